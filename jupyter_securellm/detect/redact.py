"""Redaction: replace every finding with a placeholder naming its rule, for whole texts and for streams."""
from __future__ import annotations

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
            findings = [f for f in self.redactor.scanner.scan(buf) if f.end > ctx]
            hold = _partial_start(self.redactor.scanner, buf, ctx)
            n = len(buf)
            for f in findings:
                if f.end >= n - LOOKAROUND_MARGIN:  # complete, but more input could still extend it
                    hold = min(hold, f.start)
            # never split a finding: hold from the start of any finding that crosses the hold point
            for f in findings:
                if f.start < hold < f.end:
                    hold = f.start
            hold = max(hold, ctx)
            return self._emit(buf, ctx, hold, [f for f in findings if f.end <= hold])

    def flush(self) -> str:
        with self._lock:
            buf = self._context + self._pending
            ctx = len(self._context)
            findings = [f for f in self.redactor.scanner.scan(buf) if f.end > ctx]
            return self._emit(buf, ctx, len(buf), findings)

    def _emit(self, buf: str, ctx: int, hold: int, findings: list[Finding]) -> str:
        # A finding that began inside the context was already redacted when it was emitted.
        emitted = []
        pos = ctx
        for f in findings:
            if f.start < ctx:
                pos = max(pos, f.end)
                continue
            emitted.append(f)
        out = self.redactor.apply(buf[pos:hold], [_shift(f, -pos) for f in emitted])
        self._context = buf[max(0, hold - LOOKAROUND_MARGIN * 4) : hold]
        self._pending = buf[hold:]
        return out


def _shift(f: Finding, by: int) -> Finding:
    return Finding(f.start + by, f.end + by, f.rule_id, f.fingerprint)


# -- partial matching -----------------------------------------------------------------------------------
_PARTIAL_CACHE: dict[tuple[int, int], object] = {}
_PARTIAL_LOCK = threading.Lock()


def _partial_pattern(scanner: Scanner):
    """One `regex` alternation of every rule and every known-secret form, for partial-match searches."""
    import regex

    key = (id(scanner), scanner.known_version)
    with _PARTIAL_LOCK:
        cached = _PARTIAL_CACHE.get(key)
        if cached is not None and cached[0] is scanner:
            return cached[1]
        alts = []
        for i, rule in enumerate(scanner.rules):
            # group names must be unique across the alternation; partial matching needs no groups
            pat = rule.pattern
            for name in rule.regex.groupindex:
                pat = pat.replace(f"(?P<{name}>", f"(?P<g{i}_{name}>").replace(f"(?P={name})", f"(?P=g{i}_{name})")
            alts.append(f"(?a:{pat})")
        import re as _re

        for secret in scanner.known_secrets():
            forms = sorted(known_mod.variants(secret), key=len, reverse=True)
            alts.append("|".join(_re.escape(v) for v in forms))
            sep = known_mod.separated_pattern(secret)
            if sep:
                alts.append(sep)
        rx = regex.compile("|".join(f"(?:{a})" for a in alts), regex.VERSION0)
        for k in [k for k in _PARTIAL_CACHE if k[0] == id(scanner)]:
            del _PARTIAL_CACHE[k]
        _PARTIAL_CACHE[key] = (scanner, rx)
        return rx


def _partial_start(scanner: Scanner, buf: str, start: int) -> int:
    """Earliest index >= start where a match could begin and not be finished by the end of `buf`."""
    rx = _partial_pattern(scanner)
    n = len(buf)
    pos = start
    while pos < n:
        m = rx.search(buf, pos, partial=True)
        if m is None:
            return n
        if m.partial or m.end() >= n - LOOKAROUND_MARGIN:
            return m.start()
        pos = m.start() + 1
    return n
