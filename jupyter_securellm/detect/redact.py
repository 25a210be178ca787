"""Redaction: replace every finding with a placeholder naming its rule, for whole texts and for streams."""
from __future__ import annotations

import threading

from .rules import LOOKAROUND_MARGIN
from .partial import partial_start
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
    progress (see `partial`), so it holds back only what an unfinished
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
            scanner = self.redactor.scanner
            findings = scanner.scan(buf, start=ctx)
            hold = min(partial_start(scanner.partial_detectors(), buf, ctx), scanner.known_hold_start(buf, ctx))
            n = len(buf)
            for f in findings:
                if f.end >= n - LOOKAROUND_MARGIN:  # complete, but more input could still extend it
                    hold = min(hold, _match_start(f))
            # never split a match: hold from the start of any match that crosses the hold point (latest
            # first, so a chain of overlapping matches, such as the pieces of one value, moves it all the way)
            for f in sorted(findings, key=_match_start, reverse=True):
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
