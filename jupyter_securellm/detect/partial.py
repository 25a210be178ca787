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

from .lazy_regex import LazyRegex
from .rules import LOOKAROUND_MARGIN

_ASCII = [chr(i) for i in range(128)]


class Alphabet:
    """The characters a pattern can consume: an ASCII set, plus whether any non-ASCII character can."""

    __slots__ = ("ascii", "non_ascii", "_outside")

    def __init__(self, ascii_chars=(), non_ascii=False):
        self.ascii = frozenset(ascii_chars)
        self.non_ascii = non_ascii
        self._outside = None  # compiled on first use: few detectors ever need it

    def _outside_rx(self):
        if self._outside is None:
            members = "".join(re.escape(ch) for ch in sorted(self.ascii))
            if self.non_ascii:
                outside = "".join(re.escape(ch) for ch in _ASCII if ch not in self.ascii)
                self._outside = re.compile(f"[{outside}]") if outside else False
            else:
                # a negated class, not a range up to U+10FFFF: `re` compiles that in microseconds, not ms
                self._outside = re.compile(f"[^{members}]") if members else re.compile("(?s:.)")
        return self._outside

    def tail_start(self, reversed_buf: str, n: int, floor: int) -> int:
        """Start of the longest suffix (not before `floor`) made only of alphabet characters."""
        rx = self._outside_rx()
        if rx is False:
            return floor
        m = rx.search(reversed_buf, 0, n - floor)
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


def _cased(chars: set[str], icase: bool) -> set[str]:
    return {x for ch in chars for x in (ch, ch.lower(), ch.upper())} if icase else set(chars)


def pattern_alphabet(pattern: str, flags: int = 0, parsed=None) -> Alphabet:
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
            elif op is c.ANY:
                chars.update(_ASCII)
                non_ascii = True
            elif op is c.NOT_LITERAL:
                # every character but this one (in both cases under IGNORECASE), and any non-ASCII one
                chars.update(set(_ASCII) - _cased({chr(av)}, icase))
                non_ascii = True
            elif op is c.IN:
                members: set[str] = set()
                negate = False
                wide = False
                for iop, iav in av:
                    if iop is c.NEGATE:
                        negate = True
                    elif iop is c.LITERAL:
                        members.add(chr(iav))
                    elif iop is c.RANGE:
                        members.update(chr(x) for x in range(iav[0], min(iav[1], 127) + 1))
                        wide = wide or iav[1] > 127
                    elif iop is c.CATEGORY:
                        members |= _category_chars(iav)
                    else:  # an item this walk does not know: assume the class takes anything
                        members, negate, wide = set(), True, True
                        break
                if negate:
                    # what the class excludes is excluded for good: `[^\s"']` never consumes a space,
                    # so a partial match of it cannot reach back over one
                    chars.update(set(_ASCII) - _cased(members, icase))
                    non_ascii = True
                else:
                    non_ascii = non_ascii or wide
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
            elif op in (c.ASSERT, c.ASSERT_NOT) and av[0] == 1:
                # a lookahead reads characters it does not consume, and a partial match may end inside
                # one (`regex` reports the match as partial there), so they belong to the tail too
                walk(av[1], icase)
            # lookbehinds read only what the match has already passed (or what precedes it); AT and
            # GROUPREF (the same characters as its group) add nothing

    if parsed is None:
        parsed = _parser.parse(pattern, flags)
    walk(parsed, bool(parsed.state.flags & _re.IGNORECASE))
    return Alphabet(chars, non_ascii)


def pattern_first_set(pattern: str, flags: int = 0, parsed=None) -> frozenset[str] | None:
    """The characters a match of `pattern` can start with (None: could be anything)."""
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
        if parsed is None:
            parsed = _parser.parse(pattern, flags)
        chars, empty = first(parsed, bool(parsed.state.flags & re.IGNORECASE))
    except _Any:
        return None
    if empty or not chars:
        return None
    return frozenset(chars)


def pattern_first_chars(pattern: str, flags: int = 0) -> re.Pattern | None:
    """A character class of what a match of `pattern` can start with (None: could be anything)."""
    chars = pattern_first_set(pattern, flags)
    if chars is None:
        return None
    return re.compile("[" + "".join(re.escape(ch) for ch in sorted(chars)) + "]")


class Detector:
    """One rule's stream detector: its alphabet and first characters (read from the parse tree, cheap)
    and its `regex` pattern for partial matching, compiled the first time a tail gets past the other two."""

    __slots__ = ("pattern", "_rx", "alphabet", "width", "first", "first_set")

    def __init__(self, pattern: str, alphabet: Alphabet, width: int, first_set: frozenset[str] | None = None):
        self.pattern, self.alphabet, self.width, self.first_set = pattern, alphabet, width, first_set
        self._rx = None
        self.first = (
            None
            if first_set is None
            else re.compile("[" + "".join(re.escape(ch) for ch in sorted(first_set)) + "]")
        )

    @property
    def rx(self):
        if self._rx is None:
            import regex

            self._rx = regex.compile(self.pattern, regex.ASCII | regex.VERSION0)
        return self._rx


_LAZY_QUANTIFIER = LazyRegex(r"(?<!\\)([*+?]|\{\d*,?\d*\})\?")


def greedy_pattern(pattern: str, flags: int = 0) -> str:
    """`pattern` with its lazy quantifiers made greedy, if that is all the rewrite changes.

    Whether a match from a position can still reach the end of the buffer does not depend on the order
    in which a quantifier tries its counts, but the `regex` module misses partial matches of a lazy
    quantifier followed by a lookbehind that fails at the end (`a.{0,40}?(?<![a-z])[0-9]` on `abc`: no
    partial match; greedy: partial). The rewrite is textual, so it is kept only when `re`'s parse of it
    equals the original's with every MIN_REPEAT read as MAX_REPEAT (a `?` inside a class stays as it is).
    """
    from re import _parser  # type: ignore[attr-defined]

    greedy = _LAZY_QUANTIFIER.sub(r"\1", pattern)
    if greedy == pattern:
        return pattern
    try:
        want = str(_parser.parse(pattern, flags).data).replace("MIN_REPEAT", "MAX_REPEAT")
        got = str(_parser.parse(greedy, flags).data)
    except re.error:
        return pattern
    return greedy if got == want else pattern


def rule_detectors(rules) -> list[Detector]:
    """Partial-match detectors for a rule set (`RuleSet.partial_detectors` builds them once and keeps them)."""
    return [
        Detector(
            greedy_pattern(r.pattern, re.ASCII),
            pattern_alphabet(r.pattern, re.ASCII, r.parsed),
            r.max_width,
            pattern_first_set(r.pattern, re.ASCII, r.parsed),
        )
        for r in rules
    ]


#: How far back `partial_start` walks character by character before falling back to per-detector regexes.
_WALK_LIMIT = 256


class DetectorSet:
    """The detectors of one rule set, with per-character bitmasks: which alphabets admit each character,
    and which detectors' matches can start with it."""

    __slots__ = ("detectors", "masks", "non_ascii_masks", "all_mask")

    def __init__(self, detectors: list[Detector]):
        self.detectors = detectors
        alpha = {ch: 0 for ch in _ASCII}
        first = {ch: 0 for ch in _ASCII}
        alpha_wide = first_wide = 0
        for i, det in enumerate(detectors):
            bit = 1 << i
            for ch in det.alphabet.ascii:
                alpha[ch] |= bit
            if det.alphabet.non_ascii:
                alpha_wide |= bit
            if det.first_set is None:  # could start anywhere
                for ch in _ASCII:
                    first[ch] |= bit
                first_wide |= bit
            else:
                for ch in det.first_set:
                    if ch < "\x80":
                        first[ch] |= bit
                    else:
                        first_wide |= bit
        #: character -> (detectors whose alphabet admits it, detectors whose match can start with it)
        self.masks = {ch: (alpha[ch], first[ch]) for ch in _ASCII}
        self.non_ascii_masks = (alpha_wide, first_wide)
        self.all_mask = (1 << len(detectors)) - 1


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def partial_start(ds: DetectorSet, buf: str, start: int) -> int:
    """Earliest index >= start where a match could begin and not be finished by the end of `buf`.

    The answer is the earliest start over all detectors. One walk back over the tail, character by
    character, drops each detector at the first character its alphabet refuses (that character bounds
    where its partial match could start; most detectors drop at once) and keeps only detectors whose tail
    holds a character their match can start with. The survivors are tried widest tail first with the
    `regex` module's partial matching, and a detector whose tail begins at or after the hold found so
    far is not tried at all.
    """
    n = len(buf)
    if n <= start:
        return n
    masks = ds.masks
    wide_masks = ds.non_ascii_masks
    none = (0, 0)
    alive = ds.all_mask
    seen = 0  # detectors with a possible first character in buf[i:]
    groups = []  # (i, detectors whose tail is exactly buf[i:] and holds a possible first character)
    i = n
    stop = max(start, n - _WALK_LIMIT)
    while alive and i > stop:
        ch = buf[i - 1]
        alpha, first = masks.get(ch, none) if ch < "\x80" else wide_masks
        dead = alive & ~alpha
        if dead:
            alive &= alpha
            dead &= seen
            if dead:
                groups.append((i, dead))
        seen |= first
        i -= 1
    dets = ds.detectors
    hold = n
    if alive:
        # Detectors that never dropped: their tails reach back to (or past) where the walk stopped.
        if i <= start:
            alive &= seen  # the walk covered all of buf[start:]
        spans = []
        rev = None
        for k in _bits(alive):
            det = dets[k]
            floor = max(start, n - det.width)
            if i <= floor:
                spans.append((floor, k))  # walked past its reach: every position down to its floor is possible
            else:
                if rev is None:
                    rev = buf[::-1]
                spans.append((det.alphabet.tail_start(rev, n, floor), k))
        spans.sort()
        for pos, k in spans:
            if pos >= hold:
                break
            hold = _earliest(dets[k], buf, pos, hold, n)
    for t, group in reversed(groups):  # widest tails first
        if t >= hold:
            break
        for k in _bits(group):
            det = dets[k]
            pos = max(t, n - det.width)
            if pos < hold:
                hold = _earliest(det, buf, pos, hold, n)
    return hold


def _earliest(det: Detector, buf: str, pos: int, hold: int, n: int) -> int:
    """min(hold, where `det`'s first match in progress at the end of `buf`, starting at >= pos, begins)."""
    if det.first is not None:
        f = det.first.search(buf, pos, hold)
        if f is None:
            return hold
        pos = f.start()
    rx = det.rx
    while pos < hold:
        m = rx.search(buf, pos, partial=True)
        if m is None:
            break
        if m.partial or m.end() >= n - LOOKAROUND_MARGIN:
            return min(hold, m.start())
        # `regex` prefers a complete match to one in progress, so a short complete match can hide a longer
        # one still arriving (a PEM body matched without the END line it is in the middle of): ask whether
        # a match from here can reach the end
        if rx.fullmatch(buf, m.start(), partial=True) is not None:
            return min(hold, m.start())
        pos = m.start() + 1
    return hold
