"""Redaction: replace every finding with a placeholder naming its rule, for whole texts and for streams."""
from __future__ import annotations

import re
import threading

from . import known as known_mod
from .rules import LOOKAROUND_MARGIN
from .scanner import Finding, Scanner, as_text

DEFAULT_PLACEHOLDER = "[REDACTED:{rule_id}]"


class Redactor:
    """Replaces secrets with `placeholder` (formatted with `rule_id`), never leaving a fragment behind."""

    def __init__(self, scanner: Scanner | None = None, *, placeholder: str = DEFAULT_PLACEHOLDER, **scanner_kw):
        if scanner is not None and scanner_kw:
            raise TypeError("pass either a Scanner or Scanner keyword arguments, not both")
        self.scanner = scanner if scanner is not None else Scanner(**scanner_kw)
        try:
            placeholder.format(rule_id="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"placeholder may only use the field {{rule_id}}: {exc}") from None
        self.placeholder = placeholder

    def add_secret(self, value: str) -> None:
        self.scanner.add_secret(value)

    def redact(self, text: str | bytes) -> str | bytes:
        if isinstance(text, str):
            return self.redact_with_findings(text)[0]
        out = self.redact_with_findings(as_text(text))[0]
        return out.encode("utf-8", "surrogateescape")

    def redact_with_findings(self, text: str) -> tuple[str, list[Finding]]:
        findings = self.scanner.scan(text)
        return self.apply(text, findings), findings

    def apply(self, text: str, findings: list[Finding]) -> str:
        """Replace `findings` (sorted, as `Scanner.scan` returns them) in `text`; overlapping ones merge."""
        if not findings:
            return text
        parts = []
        pos = 0
        cur_start, cur_end, cur_rule = findings[0].start, findings[0].end, findings[0].rule_id
        for f in findings[1:]:
            if f.start < cur_end:
                cur_end = max(cur_end, f.end)
                continue
            parts += (text[pos:cur_start], self.placeholder.format(rule_id=cur_rule))
            pos = cur_end
            cur_start, cur_end, cur_rule = f.start, f.end, f.rule_id
        parts += (text[pos:cur_start], self.placeholder.format(rule_id=cur_rule), text[cur_end:])
        return "".join(parts)

    def stream(self) -> "StreamRedactor":
        return StreamRedactor(self)


class StreamRedactor:
    """Redacts text delivered in arbitrary chunks; a secret split across chunks is still caught.

    After each chunk it emits everything up to the earliest position where a match could still be in
    progress (found with the `regex` module's partial matching), so it holds back only what an unfinished
    match needs: usually nothing, at most one rule's maximum width.
    """

    def __init__(self, redactor: Redactor):
        self.redactor = redactor
        self._pending = ""
        self._context = ""  # the last emitted characters, kept (unredacted, never re-emitted) for lookbehinds
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """How many characters are currently held back."""
        return len(self._pending)

    def feed(self, chunk: str) -> str:
        if not isinstance(chunk, str):
            chunk = as_text(chunk)
        with self._lock:
            if not chunk:
                return ""
            buf = self._context + self._pending + chunk
            ctx = len(self._context)
            findings = self.redactor.scanner.scan(buf, start=ctx)
            hold = _partial_start(self.redactor.scanner, buf, ctx)
            n = len(buf)
            for f in findings:
                if f.end >= n - LOOKAROUND_MARGIN:  # complete, but more input could still extend it
                    hold = min(hold, _match_start(f))
            # never split a match: hold from the start of any match that crosses the hold point
            for f in findings:
                if _match_start(f) < hold < f.end:
                    hold = _match_start(f)
            hold = max(hold, ctx)
            return self._emit(buf, ctx, hold, [f for f in findings if f.end <= hold])

    def flush(self) -> str:
        with self._lock:
            buf = self._context + self._pending
            ctx = len(self._context)
            findings = self.redactor.scanner.scan(buf, start=ctx)
            return self._emit(buf, ctx, len(buf), findings)

    def _emit(self, buf: str, ctx: int, hold: int, findings: list[Finding]) -> str:
        # Findings never start inside the context (scan(start=ctx)); clamp anyway so that, whatever
        # happens, text is redacted rather than dropped.
        clamped = [f if f.start >= ctx else Finding(ctx, f.end, f.rule_id, f.fingerprint) for f in findings]
        out = self.redactor.apply(buf[ctx:hold], [_shift(f, -ctx) for f in clamped if f.end > ctx])
        self._context = buf[max(0, hold - LOOKAROUND_MARGIN * 4) : hold]
        self._pending = buf[hold:]
        return out


def _match_start(f: Finding) -> int:
    return f.start if f.match_start < 0 else min(f.start, f.match_start)


def _shift(f: Finding, by: int) -> Finding:
    return Finding(f.start + by, f.end + by, f.rule_id, f.fingerprint)


# -- partial matching -----------------------------------------------------------------------------------
#
# A match still in progress at the end of the buffer consists only of characters its pattern can consume.
# Each detector therefore knows its alphabet: walking back from the end of the buffer over alphabet
# characters bounds where its partial match could start, and most detectors stop at the first character
# (a newline, a space) without running a regex at all.

_ASCII = [chr(i) for i in range(128)]


class _Alphabet:
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


def pattern_alphabet(pattern: str, flags: int = 0) -> _Alphabet:
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
    return _Alphabet(chars, non_ascii)


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


class _Detector:
    __slots__ = ("rx", "alphabet", "width", "first")

    def __init__(self, rx, alphabet: _Alphabet, width: int, first: re.Pattern | None = None):
        self.rx, self.alphabet, self.width, self.first = rx, alphabet, width, first


_RULE_DETECTORS: dict[int, tuple[object, list[_Detector]]] = {}
_PARTIAL_LOCK = threading.Lock()


def _rule_detectors(rules) -> list[_Detector]:
    """Partial-match detectors for a rule set, built once per process and shared by every stream."""
    import regex

    with _PARTIAL_LOCK:
        entry = _RULE_DETECTORS.get(id(rules))
        if entry is None or entry[0] is not rules:
            dets = [
                _Detector(
                    regex.compile(r.pattern, regex.ASCII | regex.VERSION0),
                    pattern_alphabet(r.pattern, re.ASCII),
                    r.max_width,
                    pattern_first_chars(r.pattern, re.ASCII),
                )
                for r in rules
            ]
            entry = (rules, dets)
            _RULE_DETECTORS[id(rules)] = entry
        return entry[1]


def _known_detector(secrets: tuple[str, ...]) -> _Detector | None:
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
    return _Detector(
        regex.compile("|".join(f"(?:{a})" for a in alts), regex.VERSION0),
        _Alphabet(ascii_part, len(ascii_part) < len(alphabet)),
        width,
        re.compile("[" + "".join(re.escape(ch) for ch in sorted(firsts)) + "]"),
    )


def _detectors(scanner: Scanner) -> list[_Detector]:
    known = _known_detector(scanner.known_secrets())
    return _rule_detectors(scanner.rules) + ([known] if known is not None else [])


#: How far back `_partial_start` walks character by character before falling back to per-detector regexes.
_WALK_LIMIT = 256


#: A piece of a known secret shorter than this at the very end of the buffer is not held back.
_MIN_HELD_PIECE = 4


def _piece_start(secret: str, buf: str, start: int) -> int:
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


class _DetectorSet:
    """The detectors of one scanner state, with per-character bitmasks of which alphabets admit it."""

    __slots__ = ("version", "detectors", "masks", "non_ascii_mask", "all_mask", "pieces")

    def __init__(self, version: int, detectors: list[_Detector], pieces: tuple[str, ...] = ()):
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


def _partial_start(scanner: Scanner, buf: str, start: int) -> int:
    """Earliest index >= start where a match could begin and not be finished by the end of `buf`."""
    n = len(buf)
    ds = scanner.__dict__.get("_partial_detectors")
    if ds is None or ds.version != scanner.known_version:
        long_secrets = tuple(x for x in scanner.known_secrets() if known_mod.fragments(x))
        ds = _DetectorSet(scanner.known_version, _detectors(scanner), long_secrets)
        scanner.__dict__["_partial_detectors"] = ds
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
        hold = min(hold, _piece_start(secret, buf, start))
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
