"""Partial matching for streams: where, at the end of a buffer, could a match still be in progress?

A match still in progress at the end of the buffer consists only of characters its pattern can consume.
Each detector therefore knows its alphabet, found by walking the `re` parser's tree of its pattern:
walking back from the end of the buffer over alphabet characters bounds where its partial match could
start, and most detectors stop at the first character (a newline, a space) without running a regex at all.
The candidates left are confirmed with the `regex` module's partial matching.

`StreamRedactor` is the only user; `RuleSet` keeps the rule detectors, `Scanner` the known-secret ones.
"""
from __future__ import annotations

import re

from . import known as known_mod
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


def known_detector(secrets: tuple[str, ...]) -> Detector | None:
    """One detector for every literal and separated form of the known secrets."""
    import regex

    if not secrets:
        return None
    alts, alphabet, firsts, width = [], set(), set(), 0
    for secret in secrets:
        # fragments are held back separately (`_piece_start`): as complete alternatives here they would
        # hide a longer form that is still arriving
        forms = sorted(known_mod.variants(secret, with_fragments=False), key=len, reverse=True)
        alts.append("|".join(re.escape(v) for v in forms))
        for v in forms:
            alphabet.update(v)
            firsts.add(v[0])
        width = max(width, max(len(v) for v in forms))
        sep = known_mod.separated_pattern(secret)
        if sep:
            alts.append(sep)
            alphabet.update(" \t\n\r\f\v\x1b[;m0123456789'\",\\")
            alphabet.update(known_mod.ZERO_WIDTH)
            firsts.add(secret[0])
            width = max(width, known_mod.separated_max_width(secret))
    ascii_part = {ch for ch in alphabet if ch < "\x80"}
    return Detector(
        regex.compile("|".join(f"(?:{a})" for a in alts), regex.VERSION0),
        Alphabet(ascii_part, len(ascii_part) < len(alphabet)),
        width,
        re.compile("[" + "".join(re.escape(ch) for ch in sorted(firsts)) + "]"),
    )


#: How far back `_partial_start` walks character by character before falling back to per-detector regexes.
_WALK_LIMIT = 256


#: A piece of a known secret shorter than this at the very end of the buffer is not held back.
_MIN_HELD_PIECE = 4


def piece_start(secret: str, buf: str, start: int) -> int:
    """Start of the longest suffix of `buf` (not before `start`) that is a piece of `secret`, or len(buf).

    Whether a suffix of length L occurs in the secret is monotone in L, so a binary search needs only
    O(log len(secret)) substring tests.
    """
    n = len(buf)
    hi = min(len(secret), n - start)
    if hi < _MIN_HELD_PIECE or buf[n - _MIN_HELD_PIECE :] not in secret:
        return n
    lo = _MIN_HELD_PIECE
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if buf[n - mid :] in secret:
            lo = mid
        else:
            hi = mid - 1
    return n - lo


class DetectorSet:
    """The detectors of one scanner state, with per-character bitmasks of which alphabets admit it."""

    __slots__ = ("version", "detectors", "masks", "non_ascii_mask", "all_mask", "pieces")

    def __init__(self, version: int, detectors: list[Detector], pieces: tuple[str, ...] = ()):
        self.version = version
        self.detectors = detectors
        self.pieces = pieces  # known secrets long enough to be caught in pieces
        self.masks = {ch: 0 for ch in _ASCII}
        self.non_ascii_mask = 0
        for i, det in enumerate(detectors):
            bit = 1 << i
            for ch in det.alphabet.ascii:
                self.masks[ch] |= bit
            if det.alphabet.non_ascii:
                self.non_ascii_mask |= bit
        self.all_mask = (1 << len(detectors)) - 1


def known_detector_set(version: int, rule_dets: list[Detector], secrets: tuple[str, ...]) -> DetectorSet:
    """The detectors of one scanner state: its rules' and one for the known secrets of `version`."""
    known = known_detector(secrets)
    long_secrets = tuple(x for x in secrets if known_mod.fragments(x))
    return DetectorSet(version, rule_dets + ([known] if known is not None else []), long_secrets)


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
    for secret in ds.pieces:
        hold = min(hold, piece_start(secret, buf, start))
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
