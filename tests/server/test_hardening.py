"""Hardening units: the process flag and the redacting log machinery (tiers 1 and 2)."""
import io
import logging
import sys

import pytest

from jupyter_securellm.detect import Redactor, Scanner, fake_secret
from jupyter_securellm.server import hardening


@pytest.fixture(autouse=True)
def restore_active_filter():
    saved = list(hardening._ACTIVE)
    yield
    hardening._ACTIVE[:] = saved


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_set_non_dumpable_sets_the_flag():
    assert hardening.set_non_dumpable() is True
    assert hardening.is_dumpable() is False


def test_log_records_are_redacted_for_late_handlers_and_exceptions():
    r = Redactor(Scanner())
    key = fake_secret("openai-api-key")
    r.add_secret(key)
    hardening.install_log_filter(r)
    buf = io.StringIO()
    late = logging.StreamHandler(buf)  # added after installation, no filter of its own
    lg = logging.getLogger("some.library.added.later")
    lg.addHandler(late)
    lg.setLevel(logging.DEBUG)
    lg.propagate = False
    try:
        lg.debug("key=%s", key)
        lg.info({"headers": {"Authorization": f"Bearer {key}"}})
        try:
            raise ValueError(f"bad key {key}")
        except ValueError:
            lg.exception("boom")
        rec = logging.makeLogRecord({"msg": f"made by hand {key}", "levelno": logging.WARNING})
        for h in logging.getLogger().handlers:
            h.handle(rec)
    finally:
        lg.removeHandler(late)
    out = buf.getvalue()
    assert not (key in out)
    assert out.count("[REDACTED:") >= 3 and "ValueError" in out


def test_a_record_logged_while_redacting_does_not_recurse():
    class Noisy:
        scanner = None

        def redact(self, text):
            logging.getLogger("jupyter_securellm.detect").warning("inside redact")
            return text.replace("s3cr3t", "[X]")

    hardening.install_log_filter(Noisy())
    buf = io.StringIO()
    lg = logging.getLogger("noisy.test")
    h = logging.StreamHandler(buf)
    lg.addHandler(h)
    lg.propagate = False
    try:
        lg.warning("value s3cr3t")
    finally:
        lg.removeHandler(h)
    assert "value [X]" in buf.getvalue()
