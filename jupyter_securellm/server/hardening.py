"""Process hardening for the server that holds provider keys in memory.

Tier 2 (docs/architecture.md): code in a kernel runs as the same Unix user as the server and could
read `/proc/<server>/environ` and `/proc/<server>/mem`. `prctl(PR_SET_DUMPABLE, 0)` makes
those files root-owned and refuses ptrace/core dumps, without changing how kernels run.
The logging filter is the tier-1 defence: whatever a library logs (litellm has leaked keys
in debug logs and exception text), the record is redacted before any handler formats it.
"""
from __future__ import annotations

import logging
import sys
import threading

from ..redacting import redact_record

_STATE = threading.local()

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3

LOGGER_NAMES = ("", "tornado", "tornado.access", "tornado.application", "tornado.general",
                "ServerApp", "jupyter", "jupyter_server", "jupyter_securellm",
                "LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx", "httpcore", "openai", "hvac")


def set_non_dumpable() -> bool:
    """Mark this process non-dumpable (Linux). Returns True when the flag is now 0."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_DUMPABLE, 0) failed with errno {err}")
    return libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0


def is_dumpable() -> bool | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0


def process_report(scanner) -> dict:
    """What `status` says about this process: the dumpable flag and the names (never the values)
    of environment variables that hold a provider-shaped or known secret. Read by `doctor`."""
    import os

    leaky = sorted(k for k, v in os.environ.items()
                   if v and any(f.rule_id != "generic-api-key" for f in scanner.scan(v)))
    return {"pid": os.getpid(), "uid": os.getuid() if hasattr(os, "getuid") else None,
            "dumpable": is_dumpable(), "secret_env": leaky}


class RedactingFilter(logging.Filter):
    """Renders each record once, redacts the text, and freezes it so no handler re-renders it."""

    def __init__(self, redactor):
        super().__init__("jupyter_securellm")
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_securellm_redacted", False):
            return True
        if getattr(_STATE, "busy", False):
            # a record logged by the redactor itself while redacting: never recurse, never pass raw
            record.msg, record.args, record.exc_info, record.exc_text = (
                "[log record emitted during redaction withheld]", (), None, None)
            record._securellm_redacted = True
            return True
        _STATE.busy = True
        try:
            self._redact(record)
        finally:
            _STATE.busy = False
        return True

    def _redact(self, record: logging.LogRecord) -> None:
        redact_record(record, self.redactor.redact)
        record._securellm_redacted = True


def install_log_filter(redactor, extra_loggers=()) -> RedactingFilter:
    """Redact every log record: at creation (record factory) and at the named loggers/handlers.

    A logger's own filters only see records logged on that logger, records propagated from
    children only meet the parent's handlers, and handlers added later (JupyterHub's, a test
    harness's) would carry no filter at all. So the record factory redacts each record as
    `Logger.makeRecord` builds it (only records that pass the level check), whichever logger
    and handler it goes to; the filter on the named loggers and their handlers also covers
    records built by hand (`logging.makeLogRecord`). Idempotent; call again after a library
    adds handlers (the broker does, after importing litellm).
    """
    flt = _existing(redactor)
    _install_record_factory(flt)
    names = list(LOGGER_NAMES) + list(extra_loggers)
    loggers = [logging.getLogger(n) for n in names]
    for lg in loggers:
        _add(lg, flt)
        for h in lg.handlers:
            _add(h, flt)
    return flt


_FILTERS: dict[int, RedactingFilter] = {}
_ACTIVE: list[RedactingFilter] = []


def _install_record_factory(flt: RedactingFilter) -> None:
    """Wrap the record factory once; the newest server's filter is the active one."""
    _ACTIVE[:] = [flt]
    current = logging.getLogRecordFactory()
    if getattr(current, "_securellm", False):
        return

    def factory(*args, **kwargs):
        record = current(*args, **kwargs)
        for f in _ACTIVE:
            f.filter(record)
        return record

    factory._securellm = True
    logging.setLogRecordFactory(factory)


def _existing(redactor):
    flt = _FILTERS.get(id(redactor))
    if flt is None or flt.redactor is not redactor:
        flt = RedactingFilter(redactor)
        _FILTERS[id(redactor)] = flt
    return flt


def _add(target, flt) -> None:
    if not any(isinstance(f, RedactingFilter) and f.redactor is flt.redactor for f in target.filters):
        target.addFilter(flt)
