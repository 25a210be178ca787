"""The two redaction walks every room needs, written once (stdlib only; the redactor is passed in).

- `redact_json`: every string inside JSON-like data (answers, display bundles, widget state).
- `redact_record`: a log record rendered once, redacted, and frozen so no handler re-renders the
  raw arguments (litellm and hvac have put keys into log arguments and exception text).

The kernel (`kernel/redaction.py`), the broker (`server/streaming.py`) and the server's log filter
(`server/hardening.py`) all use these. See docs/architecture.md.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

Redact = Callable[[str], str]


def redact_json(obj: Any, redact: Redact, *, skip_keys: frozenset = frozenset(), redact_keys: bool = False,
                _key: Any = None) -> Any:
    """A copy of `obj` with `redact` applied to every string; dicts, lists and tuples are walked.

    Strings under a dict key in `skip_keys` are left alone (the streamed text fields, which a
    StreamRedactor handles). With `redact_keys`, dict keys are redacted too (a secret used as a key).
    """
    if isinstance(obj, str):
        if not obj or _key in skip_keys:
            return obj
        return redact(obj)
    if isinstance(obj, dict):
        return {(redact(k) if redact_keys and isinstance(k, str) and k else k):
                redact_json(v, redact, skip_keys=skip_keys, redact_keys=redact_keys, _key=k)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_json(v, redact, skip_keys=skip_keys, redact_keys=redact_keys, _key=_key) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_json(v, redact, skip_keys=skip_keys, redact_keys=redact_keys, _key=_key) for v in obj)
    return obj


def redact_record(record: logging.LogRecord, redact: Redact) -> logging.LogRecord:
    """Render `record`'s message, exception and stack once, redact them, and drop the raw args."""
    try:
        msg = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string must not let raw args through
        msg = f"{record.msg!r} % {record.args!r}"
    record.msg = redact(msg)
    record.args = ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record
