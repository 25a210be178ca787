"""Partial matching for streams: where, at the end of a buffer, could a match still be in progress?

A match still in progress at the end of the buffer consists only of characters its pattern can consume.
Each detector therefore knows its alphabet, found by walking the `re` parser's tree of its pattern:
walking back from the end of the buffer over alphabet characters bounds where its partial match could
start, and most detectors stop at the first character (a newline, a space) without running a regex at all.
The candidates left are confirmed with the `regex` module's partial matching.

`StreamRedactor` is the only user and `RuleSet` keeps the detectors. Known secrets answer the same question
from their own index (`KnownSecrets.hold_start`): one regex alternation over thousands of values would
not scale.
"""
from __future__ import annotations

import re

from .rules import LOOKAROUND_MARGIN

_ASCII = [chr(i) for i in range(128)]


class Alphabet:
    """The characters a pattern can consume: an ASCII set, plus whether any non-ASCII character can."""

    __slots__ = ("ascii", "non_ascii", "_outside")

    def __init__(self, ascii_chars=(), non_ascii=False):
        import re as _re

        self.ascii = frozenset(ascii_chars)
        self.non_ascii = non_ascii
        outside = "".join(_re.escape(ch) for ch in _ASCII if ch not in self.ascii)
        if not non_ascii:
            outside += "\\x80-\\U0010ffff"
        self._outside = _re.compile(f"[{outside}]") if outside else None

    def tail_start(self, reversed_buf: str, n: int, floor: int) -> int:
        """Start of the longest suffix (not before `floor`) made only of alphabet characters."""
        if self._outside is None:
            return floor
        m = self._outside.search(reversed_buf, 0, n - floor)
        return floor if m is None else n - m.start()


def _category_chars(cat) -> set[str]:
    from re import _constants as c  # type: ignore[attr-defined]

    tests = {
        c.CATEGORY_DIGIT: str.isdigit,
        c.CATEGORY_NOT_DIGIT: lambda ch: not ch.isdigit(),
        c.CATEGORY_SPACE: lambda ch: ch in " \t\n\r\f\v",
        c.CATEGORY_NOT_SPACE: lambda ch: ch not in " \t\n\r\f\v",
        c.CATEGORY_WORD: lambda ch: ch.isalnum() or ch == "_",
        c.CATEGORY_NOT_WORD: lambda ch: not (ch.isalnum() or ch == "_"),
    }
    test = tests.get(cat)
    return {ch for ch in _ASCII if test(ch)} if test else set(_ASCII)


def pattern_alphabet(pattern: str, flags: int = 0) -> Alphabet:
    """Superset of the characters `pattern` (compiled with re.ASCII) can consume in a match."""
    import re as _re
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]

    chars: set[str] = set()
    non_ascii = False

    def add(ch: str, icase: bool):
        nonlocal non_ascii
        for x in ({ch, ch.lower(), ch.upper()} if icase else {ch}):
            if len(x) == 1 and x < "\x80":
                chars.add(x)
            else:
                non_ascii = True

    def walk(sub, icase):
        nonlocal non_ascii
        for op, av in sub:
            if op is c.LITERAL:
                add(chr(av), icase)
            elif op in (c.NOT_LITERAL, c.ANY):
                chars.update(_ASCII)
                non_ascii = True
            elif op is c.IN:
                members: set[str] = set()
                negate = False
                for iop, iav in av:
                    if iop is c.NEGATE:
                        negate = True
                    elif iop is c.LITERAL:
                        members.add(chr(iav))
                    elif iop is c.RANGE:
                        members.update(chr(x) for x in range(iav[0], min(iav[1], 127) + 1))
                        if iav[1] > 127:
                            non_ascii = True
                    elif iop is c.CATEGORY:
                        members |= _category_chars(iav)
                if negate:
                    chars.update(_ASCII)  # conservative: a negated class may consume almost anything
                    non_ascii = True
                else:
                    for ch in members:
                        add(ch, icase)
            elif op is c.BRANCH:
                for b in av[1]:
                    walk(b, icase)
            elif op is c.SUBPATTERN:
                _group, add_flags, del_flags, p = av
                ic = (icase or bool(add_flags & _re.IGNORECASE)) and not (del_flags & _re.IGNORECASE)
                walk(p, ic)
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
                walk(av[2], icase)
            elif op is getattr(c, "ATOMIC_GROUP", None):
                walk(av, icase)
            elif op is c.GROUPREF_EXISTS:
                walk(av[1], icase)
                if av[2]:
                    walk(av[2], icase)
            # ASSERT / ASSERT_NOT / AT / GROUPREF consume nothing new

    parsed = _parser.parse(pattern, flags)
    walk(parsed, bool(parsed.state.flags & _re.IGNORECASE))
    return Alphabet(chars, non_ascii)


def pattern_first_chars(pattern: str, flags: int = 0) -> re.Pattern | None:
    """A character class of what a match of `pattern` can start with (None: could be anything)."""
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]

    class _Any(Exception):
        pass

    def first(seq, icase) -> tuple[set[str], bool]:
        """(first characters, whether `seq` can match empty)."""
        out: set[str] = set()
        for op, av in seq:
            if op in (c.ASSERT, c.ASSERT_NOT, c.AT):
                continue
            if op is c.LITERAL:
                ch = chr(av)
                out |= {ch, ch.lower(), ch.upper()} if icase else {ch}
                return out, False
            if op is c.IN:
                if any(iop is not c.LITERAL and iop is not c.RANGE for iop, _ in av):
                    raise _Any
                for iop, iav in av:
                    chars = [chr(iav)] if iop is c.LITERAL else [chr(x) for x in range(iav[0], iav[1] + 1)]
                    for ch in chars:
                        out |= {ch, ch.lower(), ch.upper()} if icase else {ch}
                return out, False
            if op is c.SUBPATTERN:
                _g, add_flags, del_flags, sub = av
                ic = (icase or bool(add_flags & re.IGNORECASE)) and not (del_flags & re.IGNORECASE)
                chars, empty = first(sub, ic)
                out |= chars
                if not empty:
                    return out, False
                continue
            if op is c.BRANCH:
                empty_any = False
                for b in av[1]:
                    chars, empty = first(b, icase)
                    out |= chars
                    empty_any |= empty
                if not empty_any:
                    return out, False
                continue
            if op in (c.MAX_REPEAT, c.MIN_REPEAT):
                chars, empty = first(av[2], icase)
                out |= chars
                if av[0] > 0 and not empty:
                    return out, False
                continue
            raise _Any
        return out, True

    try:
        parsed = _parser.parse(pattern, flags)
        chars, empty = first(parsed, bool(parsed.state.flags & re.IGNORECASE))
    except _Any:
        return None
    if empty or not chars:
        return None
    return re.compile("[" + "".join(re.escape(ch) for ch in sorted(chars)) + "]")


class Detector:
    __slots__ = ("rx", "alphabet", "width", "first")

    def __init__(self, rx, alphabet: Alphabet, width: int, first: re.Pattern | None = None):
        self.rx, self.alphabet, self.width, self.first = rx, alphabet, width, first


def rule_detectors(rules) -> list[Detector]:
    """Partial-match detectors for a rule set (`RuleSet.partial_detectors` builds them once and keeps them)."""
    import regex

    return [
        Detector(
            regex.compile(r.pattern, regex.ASCII | regex.VERSION0),
            pattern_alphabet(r.pattern, re.ASCII),
            r.max_width,
            pattern_first_chars(r.pattern, re.ASCII),
        )
        for r in rules
    ]


#: How far back `_partial_start` walks character by character before falling back to per-detector regexes.
_WALK_LIMIT = 256


class DetectorSet:
    """The detectors of one rule set, with per-character bitmasks of which alphabets admit each character."""

    __slots__ = ("detectors", "masks", "non_ascii_mask", "all_mask")

    def __init__(self, detectors: list[Detector]):
        self.detectors = detectors
        self.masks = {ch: 0 for ch in _ASCII}
        self.non_ascii_mask = 0
        for i, det in enumerate(detectors):
            bit = 1 << i
            for ch in det.alphabet.ascii:
                self.masks[ch] |= bit
            if det.alphabet.non_ascii:
                self.non_ascii_mask |= bit
        self.all_mask = (1 << len(detectors)) - 1


def partial_start(ds: DetectorSet, buf: str, start: int) -> int:
    """Earliest index >= start where a match could begin and not be finished by the end of `buf`."""
    n = len(buf)
    # Walk back over the tail once, dropping each detector at the first character its alphabet refuses:
    # that character bounds where its partial match could start. Most detectors drop at once.
    tails: dict[int, int] = {}
    alive = ds.all_mask
    masks, non_ascii = ds.masks, ds.non_ascii_mask
    i = n
    stop = max(start, n - _WALK_LIMIT)
    while alive and i > stop:
        ch = buf[i - 1]
        m = masks.get(ch, 0) if ch < "\x80" else non_ascii
        dead = alive & ~m
        if dead:
            alive &= m
            while dead:
                low = dead & -dead
                tails[low.bit_length() - 1] = i
                dead ^= low
        i -= 1
    hold = n
    rev = None
    dets = ds.detectors
    # detectors that dropped out at the very last character cannot be mid-match; the rest are candidates
    candidates = [k for k, t in tails.items() if t < n]
    rest = alive
    while rest:
        low = rest & -rest
        candidates.append(low.bit_length() - 1)
        rest ^= low
    for k in candidates:
        det = dets[k]
        floor = max(start, n - det.width)
        if k in tails:
            pos = max(tails[k], floor)
        elif i <= floor:
            pos = floor  # walked past this detector's reach: every position down to its floor is possible
        else:
            if rev is None:
                rev = buf[::-1]
            pos = det.alphabet.tail_start(rev, n, floor)
        if det.first is not None:
            f = det.first.search(buf, pos, hold)
            if f is None:
                continue
            pos = f.start()
        while pos < hold:
            m = det.rx.search(buf, pos, partial=True)
            if m is None:
                break
            if m.partial or m.end() >= n - LOOKAROUND_MARGIN:
                hold = min(hold, m.start())
                break
            pos = m.start() + 1
    return hold
