"""`GET /jupyter-securellm/v1/audit/recent`: the Lab panel's "Your recent calls", read from a real audit
log written by `governance.audit.AuditLog`. Only the caller's own call records, and only time, model,
tokens and status: never another user's calls, never a prompt fingerprint or any other field."""
import json

import pytest

from jupyter_securellm.governance.audit import AuditLog


@pytest.fixture
def audit_path(tmp_path):
    return tmp_path / "audit" / "securellm-audit.jsonl"


@pytest.fixture
def jp_server_config(audit_path):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_securellm": True}},
        "SecureLLM": {"audit_log_path": str(audit_path), "preload_litellm": False, "harden_process": False},
    }


async def recent(jp_fetch, **params):
    return await jp_fetch("jupyter-securellm", "v1", "audit", "recent", params=params, raise_error=False)


async def test_only_my_calls_newest_first_and_only_four_fields(jp_fetch, jp_serverapp, audit_path):
    me = jp_serverapp.web_app.settings["jupyter_securellm_app"].owner
    log = AuditLog(str(audit_path), rotate_daily=False)
    try:
        for i in range(3):
            log.write({"type": "decision", "user": me, "model": "gpt", "decision": "allow"})
            log.write({"type": "call", "user": me, "model": "gpt", "tokens_in": 10 + i, "tokens_out": 5,
                       "status": "ok", "prompt_hmac": "hmac-sha256:abcd", "provider_host": "api.openai.com"})
        log.write({"type": "call", "user": "someone-else", "model": "claude", "tokens_in": 1, "tokens_out": 1,
                   "status": "ok"})
        log.write({"type": "call", "user": me, "model": "claude", "status": "budget_exhausted"})
    finally:
        log.close()
    r = await recent(jp_fetch, limit="3")
    assert r.code == 200
    calls = json.loads(r.body)["calls"]
    assert [(c["model"], c["tokens"], c["status"]) for c in calls] == [
        ("claude", None, "budget_exhausted"), ("gpt", 17, "ok"), ("gpt", 16, "ok")]
    assert all(set(c) == {"time", "model", "tokens", "status"} and c["time"] for c in calls)
    assert "someone-else" not in r.body.decode() and "hmac" not in r.body.decode()


async def test_configured_but_empty(jp_fetch):
    r = await recent(jp_fetch)
    assert r.code == 200 and json.loads(r.body) == {"calls": []}


async def test_bad_limit(jp_fetch):
    r = await recent(jp_fetch, limit="many")
    assert r.code == 400 and json.loads(r.body)["error"]["type"] == "invalid_request"


@pytest.mark.parametrize("audit_path", [""])
async def test_not_configured_is_a_404_the_panel_understands(jp_fetch, audit_path):
    r = await recent(jp_fetch)
    assert r.code == 404
    assert "audit log is not configured" in json.loads(r.body)["error"]["message"]


async def test_needs_auth(jp_fetch):
    r = await jp_fetch("jupyter-securellm", "v1", "audit", "recent", headers={"Authorization": "token nope"},
                       raise_error=False)
    assert r.code == 403
