"""Hub checks against a real JupyterHub (jupyter_securellm.testing.hub): the Hub test stack's own
jupyterhub_config.py, and the Hub API asked about real tokens' scopes."""
from __future__ import annotations

import contextlib
import io
import json
import os

from jupyter_securellm.testing.hub import SERVICE

SCOPE = f"access:services!service={SERVICE}"


def doctor(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main_doctor(*argv)
    assert rc in (0, 1), err.getvalue()
    return rc, {c["check"]: c for c in json.loads(out.getvalue())["checks"]}


def main_doctor(*argv):
    from jupyter_securellm.cli import main

    return main(["doctor", "--only", "hub", "--format", "json", *argv])


def singleuser_config(tmp_path) -> str:
    p = tmp_path / "jupyter_server_config.py"
    p.write_text(f"c = get_config()\nc.SecureLLM.broker_mode = 'hub-service'\nc.SecureLLM.hub_service_name = {SERVICE!r}\n")
    return str(p)


def test_the_hub_stack_config_passes(hub_stack, tmp_path, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    rc, checks = doctor("--config", singleuser_config(tmp_path), "--hub-config", str(hub_stack.dir / "jupyterhub_config.py"))
    assert rc == 0, checks
    assert checks["hub.service-scope"]["status"] == "pass"
    uid = checks["hub.service-uid"]
    assert uid["status"] == "pass" and hub_stack.broker_name in uid["summary"]


def test_a_token_with_the_scope_passes_and_one_without_fails(hub_stack, tmp_path, monkeypatch):
    cfg = singleuser_config(tmp_path)
    monkeypatch.setenv("JUPYTERHUB_API_URL", hub_stack.api)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", hub_stack.user_token(hub_stack.alice, [SCOPE]))
    rc, checks = doctor("--config", cfg)
    assert checks["hub.service-scope"]["status"] == "pass", checks["hub.service-scope"]
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", hub_stack.user_token(hub_stack.alice, ["read:users:name!user"]))
    rc, checks = doctor("--config", cfg)
    c = checks["hub.service-scope"]
    assert rc == 1 and c["status"] == "fail" and SCOPE in c["summary"]
    assert os.environ["JUPYTERHUB_API_TOKEN"] not in json.dumps(checks)
