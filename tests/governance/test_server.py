"""Governance wired into a real Jupyter server (pytest-jupyter), a real OpenBao holding the key and the
stand-in provider: policy decides every action, budgets answer 429 with a reset time, the audit log
records every decision and call (and nothing secret), status shows budget and alerts, /metrics is
authenticated, and an unwritable audit log refuses calls."""
from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from jupyter_securellm.detect import fake_secret  # noqa: E402
from jupyter_securellm.governance.audit import verify  # noqa: E402
from jupyter_securellm.testing.server_fixtures import audit_records  # noqa: E402

POLICY = """package jupyter_securellm.authz

deny contains "max_tokens above 100 is not allowed here" if {
	input.action == "chat"
	is_number(input.request.max_tokens)
	input.request.max_tokens > 100
}

deny contains "models is closed today" if {
	input.action == "models"
	input.user == data_closed_user
}

data_closed_user := "nobody-at-all"

deny contains "secret db/forbidden is off limits" if {
	input.action == "secrets.get"
	input.secret_path == "db/forbidden"
}
"""


@pytest.fixture
def policy():
    return POLICY


@pytest.fixture
def securellm_extra():
    return {}


@pytest.fixture
def jp_server_config(governed_server_config, securellm_extra):
    governed_server_config["SecureLLM"].update({"user_secret_paths": ["db/*"],
                                                "budgets": {"default": {"daily_tokens": 600, "rpm": 50}}})
    governed_server_config["SecureLLM"].update(securellm_extra)
    return governed_server_config


@pytest.fixture
def api(jp_fetch):
    async def call(path, body=None, *, auth=True):
        kw = {"method": "POST" if body is not None else "GET", "raise_error": False, "request_timeout": 180,
              "headers": {} if auth else {"Authorization": ""}}
        if body is not None:
            kw["body"] = json.dumps(body)
        r = await jp_fetch("jupyter-securellm", "v1", *path.split("/"), **kw)
        raw = r.body.decode()
        try:
            return r.code, json.loads(raw), raw
        except ValueError:
            return r.code, None, raw
    return call


def _records(gov_dir) -> list[dict]:
    return audit_records(gov_dir / "audit.jsonl")


async def test_policy_denies_with_403_and_reasons_and_nothing_is_sent(api, provider, gov_dir):
    code, body, _ = await api("chat/completions", {"model": "gpt", "max_tokens": 500,
                                                   "messages": [{"role": "user", "content": "hi"}]})
    assert code == 403 and body["error"]["type"] == "policy_denied"
    assert body["error"]["message"] == "Denied by policy: max_tokens above 100 is not allowed here."
    assert provider.requests == []
    rec = _records(gov_dir)[-1]
    assert rec["decision"] == "deny" and rec["reasons"] == ["max_tokens above 100 is not allowed here"]


async def test_allowed_call_is_budgeted_audited_and_visible_in_status(api, provider, gov_dir, jp_serverapp):
    secret_prompt = "the quarterly numbers for the board"
    code, body, raw = await api("chat/completions", {"model": "gpt", "max_tokens": 50,
                                                     "messages": [{"role": "user", "content": secret_prompt}]})
    assert code == 200, raw
    usage = body["usage"]
    recs = _records(gov_dir)
    call = [r for r in recs if r["type"] == "call"][-1]
    assert call["tokens_in"] == usage["prompt_tokens"] and call["tokens_out"] == usage["completion_tokens"]
    assert call["model"] == "gpt" and call["status"] == "ok" and call["price_known"] is True
    text = (gov_dir / "audit.jsonl").read_text()
    assert secret_prompt not in text and "echo:" not in text and provider.key not in text
    assert verify([gov_dir / "audit.jsonl"]).ok
    code, st, _ = await api("status")
    assert code == 200
    b = st["budget"]["daily_tokens"]
    assert b["period"] == "day" and b["limit"] == 600 and b["used"] == usage["total_tokens"]
    assert b["left"] == 600 - usage["total_tokens"] and b["resets_at"].endswith("Z")
    assert st["budget"]["rpm"]["limit"] == 50 and st["alerts"] == []


async def test_budget_exhausted_is_429_with_reset_time(api, provider, gov_dir):
    # reserved: 500 prompt bytes + max_tokens 100 = 600 tokens, the whole daily budget
    msgs = [{"role": "user", "content": "word " * 100}]
    code, body, raw = await api("chat/completions", {"model": "gpt", "max_tokens": 100, "messages": msgs})
    assert code == 200, raw
    code, body, _ = await api("chat/completions", {"model": "gpt", "max_tokens": 100, "messages": msgs})
    assert code == 429 and body["error"]["type"] == "budget_exhausted"
    assert body["error"]["resets_at"].endswith("Z") and "resets at" in body["error"]["message"]
    assert len(provider.requests) == 1  # the refused call never reached the provider
    # one decision, one record: the refusal is exactly one deny record, with its reason, and counted once
    denies = [r for r in _records(gov_dir) if r.get("decision") == "deny"]
    assert len(denies) == 1, denies
    assert denies[0]["error_type"] == "budget_exhausted" and "resets at" in denies[0]["message"]
    assert denies[0]["resets_at"] == body["error"]["resets_at"]
    assert verify([gov_dir / "audit.jsonl"]).ok
    code, _, raw = await api("metrics")
    assert 'jupyter_securellm_denials_total{reason="budget_exhausted"} 1.0' in raw
    assert 'jupyter_securellm_calls_total{action="chat",model="gpt",status="budget_exhausted"} 1.0' in raw


async def test_secrets_get_and_models_are_decided_by_policy(api, openbao):
    openbao.write_secret("db/forbidden", {"password": fake_secret("openai-api-key")})
    code, body, raw = await api("secrets/get", {"path": "db/forbidden", "key": "password"})
    assert code == 403 and body["error"]["type"] == "policy_denied" and "off limits" in body["error"]["message"]
    code, body, _ = await api("models")
    assert code == 200 and body["data"][0]["id"] == "gpt"


async def test_metrics_is_authenticated_prometheus_text(api):
    await api("chat/completions", {"model": "gpt", "max_tokens": 500, "messages": [{"role": "user", "content": "x"}]})
    code, _, raw = await api("metrics", auth=False)
    assert code in (401, 403)
    code, _, raw = await api("metrics")
    assert code == 200
    assert 'jupyter_securellm_denials_total{reason="policy_denied"}' in raw
    assert "# TYPE jupyter_securellm_latency_seconds histogram" in raw


@pytest.mark.parametrize("securellm_extra", [{"audit_log_path": "/proc/securellm-cannot-write/audit.jsonl"}])
async def test_an_unwritable_audit_log_refuses_calls(api, provider, securellm_extra):
    code, body, _ = await api("chat/completions", {"model": "gpt", "max_tokens": 10,
                                                   "messages": [{"role": "user", "content": "hi"}]})
    assert code == 503 and body["error"]["type"] == "audit_unavailable"
    assert "cannot be written" in body["error"]["message"]
    assert provider.requests == []


async def test_a_cut_stream_is_settled_with_what_was_streamed(api, provider, gov_dir):
    prompt = "one two three four five six seven eight [[provider:break=3]]"
    code, _, raw = await api("chat/completions", {"model": "gpt", "max_tokens": 50, "stream": True,
                                                  "messages": [{"role": "user", "content": prompt}]})
    assert code == 200
    call = [r for r in _records(gov_dir) if r["type"] == "call"][-1]
    streamed = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content") or ""
                       for e in raw.split("\n\n") if e.startswith("data: {") and '"choices"' in e
                       and json.loads(e[6:]).get("choices"))
    assert streamed  # something arrived before the provider broke the stream
    assert call["tokens_out"] == -(-len(streamed) // 4) and call["tokens_in"] == -(-len(prompt) // 4)
    code, st, _ = await api("status")
    assert st["budget"]["daily_tokens"]["used"] == call["tokens_in"] + call["tokens_out"]


async def test_a_stream_is_settled_with_the_providers_usage_and_status_waits_for_it(api, provider, gov_dir):
    """The caller's stream ends at finish_reason; the usage chunk the broker asked for comes after the
    provider's pause, and `status` right after the stream already counts it (not the reservation)."""
    prompt = "one two three [[provider:tail=1]]"
    code, _, raw = await api("chat/completions", {"model": "gpt", "max_tokens": 50, "stream": True,
                                                  "messages": [{"role": "user", "content": prompt}]})
    assert code == 200 and raw.rstrip().endswith("data: [DONE]")
    assert provider.requests[-1].body["stream_options"] == {"include_usage": True}
    code, st, _ = await api("status")
    assert code == 200
    call = [r for r in _records(gov_dir) if r["type"] == "call"][-1]
    # the stand-in counts one token per word: 4 in the prompt (the marker is one), 4 in "echo: one two three"
    assert (call["tokens_in"], call["tokens_out"]) == (4, 4)
    assert st["budget"]["daily_tokens"]["used"] == 8


async def test_a_kernel_token_used_after_its_kernel_is_gone_raises_an_alert(api, jp_fetch, jp_serverapp):
    app = jp_serverapp.web_app.settings["jupyter_securellm_app"]
    token = app.kernel_tokens.mint("kernel-that-was-shut-down", app.owner)  # the server's real token store
    app.kernel_tokens.revoke("kernel-that-was-shut-down")
    r = await jp_fetch("jupyter-securellm", "v1", "models", method="GET", raise_error=False,
                       headers={"X-SecureLLM-Token": token, "Authorization": ""})  # the kernel way in
    assert r.code == 401
    code, st, _ = await api("status")
    assert ("stale_kernel_token", "high") in [(a["kind"], a["severity"]) for a in st["alerts"]]
    assert "kernel-that-was-shut-down" in st["alerts"][0]["message"]
    assert token not in json.dumps(st)
