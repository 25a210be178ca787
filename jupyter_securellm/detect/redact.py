"""Redaction: replace every finding with a placeholder naming its rule, for whole texts and for streams."""
from __future__ import annotations

import threading

from .rules import LOOKAROUND_MARGIN
from .partial import partial_start
from .remembered import RememberedValues
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
        """Redacted text and its findings: what the rules and known secrets find, and every later copy of
        a value a rule found (see `remembered`), as a stream of the same text would redact it."""
        findings, data = self.scanner.scan_projected(text)
        if findings:
            memory = RememberedValues()
            memory.add_found(text, findings)
            copies = memory.copies(text, data)
            if copies:
                findings = self.scanner.merge(findings + copies)
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
    progress (see `partial`), so it holds back only what an unfinished
    match needs: usually nothing, at most one rule's maximum width.

    Each stream remembers the values its rules found (`remembered`), so a later copy of one, printed
    without the context its rule needs, is redacted too, and a tail that begins such a value is held
    back like the start of a known secret. The output equals `Redactor.redact` of the whole text, for
    any chunking.
    """

    def __init__(self, redactor: Redactor):
        self.redactor = redactor
        self._pending = ""
        self._context = ""  # the last emitted characters, kept (unredacted, never re-emitted) for lookbehinds
        self._emitted = 0  # characters emitted so far: the stream position of the first pending one
        self._memory = RememberedValues()
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
            return self._step(self._context + self._pending + chunk, final=False)

    def flush(self) -> str:
        with self._lock:
            return self._step(self._context + self._pending, final=True)

    def _step(self, buf: str, final: bool) -> str:
        """Scan `buf` (context + pending + new text) and emit what can no longer change."""
        ctx = len(self._context)
        scanner = self.redactor.scanner
        findings, data = scanner.scan_projected(buf, start=ctx)
        n = len(buf)
        if final:
            hold = n
        else:
            hold = min(partial_start(scanner.partial_detectors(), buf, ctx), scanner.known_hold_start(buf, ctx))
            hold = _settle(findings, hold, n)
        memory = self._memory
        base = self._emitted - ctx  # stream position of buf[0]
        if findings:
            # values found in what is emitted now; one found past a hold lowered below is re-found, with
            # the same stream position, in the next chunk
            memory.add_found(buf, [f for f in findings if f.end <= hold], base)
        if len(memory):
            copies = memory.copies(buf, data, ctx, base)
            if copies:
                findings = scanner.merge(findings + copies)
            if not final:
                hold = _settle(findings, min(hold, memory.hold_start(buf, ctx)), n)
        hold = max(hold, ctx)
        return self._emit(buf, ctx, hold, [f for f in findings if f.end <= hold])

    def _emit(self, buf: str, ctx: int, hold: int, findings: list[Finding]) -> str:
        # Findings never start inside the context (scan(start=ctx)); clamp anyway so that, whatever
        # happens, text is redacted rather than dropped.
        clamped = [f if f.start >= ctx else Finding(ctx, f.end, f.rule_id, f.fingerprint) for f in findings]
        out = self.redactor.apply(buf[ctx:hold], [_shift(f, -ctx) for f in clamped if f.end > ctx])
        self._context = buf[max(0, hold - LOOKAROUND_MARGIN * 4) : hold]
        self._pending = buf[hold:]
        self._emitted += hold - ctx
        return out


def _settle(findings: list[Finding], hold: int, n: int) -> int:
    """Lower `hold` so no emitted finding could still change: none that more input could extend, none cut."""
    for f in findings:
        if f.end >= n - LOOKAROUND_MARGIN:  # complete, but more input could still extend it
            hold = min(hold, _match_start(f))
    # never split a match: hold from the start of any match that crosses the hold point (latest
    # first, so a chain of overlapping matches, such as the pieces of one value, moves it all the way)
    for f in sorted(findings, key=_match_start, reverse=True):
        if _match_start(f) < hold < f.end:
            hold = _match_start(f)
    return hold


def _match_start(f: Finding) -> int:
    return f.start if f.match_start < 0 else min(f.start, f.match_start)


def _shift(f: Finding, by: int) -> Finding:
    return Finding(f.start + by, f.end + by, f.rule_id, f.fingerprint)
