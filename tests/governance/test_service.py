"""The Governance facade the broker uses: policy first, budget reservation, a durable audit record per
decision and call, refusals audited, metrics rendered in the Prometheus text format."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from jupyter_securellm.governance.audit import AuditLog, verify
from jupyter_securellm.governance.budget import BudgetLedger
from jupyter_securellm.governance.policy import PolicyEngine
from jupyter_securellm.governance.service import Context, Governance, Refused

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
MODELS = {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai", "secret_key": "api_key"},
          "mystery": {"model": "openai/not-a-real-model", "secret_path": "llm/openai", "secret_key": "api_key"}}


@pytest.fixture
def gov(tmp_path):
    g = Governance(policy=PolicyEngine([]),
                   ledger=BudgetLedger(f"sqlite:///{tmp_path}/b.sqlite", {"default": {"daily_tokens": 3000}}),
                   audit=AuditLog(tmp_path / "audit.jsonl"), models=MODELS)
    yield g
    g.close()


def ctx(**kw):
    base = dict(user="ana", action="chat", model="gpt", litellm_model="openai/gpt-4o-mini", host="api.openai.com",
                host_allowed=True, max_tokens=1000, prompt_chars=400)
    base.update(kw)
    return Context(**base)


def test_call_is_reserved_settled_audited_and_counted(gov, tmp_path):
    async def run():
        t = await gov.admit(ctx())
        await gov.finish(t, tokens_in=100, tokens_out=50, prompt="hello there", answer="general kenobi")
    asyncio.run(run())
    st = gov.status_fields("ana")
    assert st["budget"]["daily_tokens"]["used"] == 150 and st["alerts"] == []
    recs = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(r["type"], r["decision"]) for r in recs] == [("decision", "allow"), ("call", "allow")]
    call = recs[1]
    assert call["tokens_in"] == 100 and call["tokens_out"] == 50 and call["price_known"] is True
    assert call["cost_usd"] == pytest.approx(100 * 1.5e-07 + 50 * 6e-07)
    assert "hello there" not in (tmp_path / "audit.jsonl").read_text()
    text = gov.metrics.render().decode()
    assert 'jupyter_securellm_tokens_total{direction="input",model="gpt"} 100.0' in text
    assert 'jupyter_securellm_calls_total{action="chat",model="gpt",status="ok"} 1.0' in text
    assert verify([tmp_path / "audit.jsonl"]).ok


def test_policy_denial_and_budget_refusal_are_audited(gov, tmp_path):
    async def run():
        with pytest.raises(Refused) as e1:
            await gov.admit(ctx(model="other"))
        with pytest.raises(Refused) as e2:
            await gov.admit(ctx(max_tokens=5000))
        return e1.value, e2.value
    denied, broke = asyncio.run(run())
    assert denied.type == "policy_denied" and "not configured" in denied.message
    assert broke.type == "budget_exhausted" and broke.extra["resets_at"]
    recs = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(r["decision"], r["error_type"]) for r in recs] == [("deny", "policy_denied"), ("deny", "budget_exhausted")]
    assert recs[0]["reasons"] == ["model other is not configured on this server"]
    text = gov.metrics.render().decode()
    assert 'jupyter_securellm_denials_total{reason="policy_denied"} 1.0' in text


def test_unknown_price_is_reported_not_zero(gov, tmp_path):
    async def run():
        t = await gov.admit(ctx(model="mystery", litellm_model="openai/not-a-real-model"))
        await gov.finish(t, tokens_in=10, tokens_out=10)
    asyncio.run(run())
    call = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()][-1]
    assert call["price_known"] is False and "cost_usd" not in call
    assert 'jupyter_securellm_unpriced_calls_total{model="mystery"} 1.0' in gov.metrics.render().decode()


def test_an_unwritable_audit_log_refuses_the_call(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("")
    g = Governance(policy=PolicyEngine([]), audit=AuditLog(blocker / "audit.jsonl"), models=MODELS)

    async def run():
        with pytest.raises(Refused) as e:
            await g.admit(ctx())
        return e.value
    err = asyncio.run(run())
    assert err.type == "audit_unavailable" and "cannot be written" in err.message
    g.close()


def test_an_alert_reaches_status_and_the_policy(tmp_path):
    g = Governance(policy=PolicyEngine([EXAMPLES]), audit=AuditLog(tmp_path / "a.jsonl"), models=MODELS)
    g.stale_token("ana", "k-9")
    assert [a["kind"] for a in g.status_fields("ana")["alerts"]] == ["stale_kernel_token"]

    async def run():
        with pytest.raises(Refused) as e:
            await g.admit(ctx(model="gpt-mini", max_tokens=10))
        return e.value
    err = asyncio.run(run())
    assert any("security alert is active" in r for r in err.extra["reasons"])
    g.close()
    kinds = [json.loads(x).get("kind") for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert "stale_kernel_token" in kinds
