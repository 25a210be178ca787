"""The doctor's command line: selection, the text table, exit codes."""
from __future__ import annotations

import contextlib
import io

from jupyter_securellm.cli import main


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["doctor", *argv])
    return rc, out.getvalue(), err.getvalue()


def test_an_unknown_check_id_is_an_error():
    rc, _, err = run("--only", "environment.pth-hook")
    assert rc == 2 and "no such check: environment.pth-hook" in err


def test_text_table_shows_the_reason_and_the_fix(tmp_path):
    cfg = tmp_path / "c.py"
    cfg.write_text("c = get_config()\nc.SecureLLM.harden_process = False\n")
    rc, out, _ = run("--only", "config.hardening", "--config", str(cfg))
    lines = out.splitlines()
    assert rc == 1
    assert lines[0].split() == ["STATUS", "CHECK", "RESULT"]
    assert lines[1].startswith("FAIL    config.hardening  harden_process is off")
    assert lines[2].strip() == "fix: c.SecureLLM.harden_process = True"
    assert lines[-1] == "1 fail; exit 1"
