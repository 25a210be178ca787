"""Tier 3: the notebook path a user's server declares to the broker service is audit metadata only.

The user's server runs as the user, so what it says about the notebook is the user's word: the service
records it (`notebook`, with `notebook_declared: true`) and never hands it to the policy. The end-to-end
path through a real Hub is in test_tier3_service.py; here the two halves that decide it, without a Hub.
"""
from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pytest

from jupyter_securellm.governance.audit import AuditLog
from jupyter_securellm.governance.policy import PolicyEngine
from jupyter_securellm.governance.service import Context, Governance, Refused
from jupyter_securellm.hub.forward import MAX_NOTEBOOK_PATH, NOTEBOOK_HEADER, HubServiceBroker
from jupyter_securellm.hub.service import declared_notebook
from jupyter_securellm.server.governor import Caller

# denies any call whose policy input carries a notebook path: it must fire on a vouched path (control)
# and never on a declared one
POLICY = '''package jupyter_securellm.authz

deny contains msg if {
	is_string(input.notebook_path)
	msg := sprintf("notebook %v", [input.notebook_path])
}
'''


def test_the_header_round_trips_and_malformed_values_are_dropped():
    broker = HubServiceBroker(service_name="securellm", service_url="http://127.0.0.1:1", api_url="http://h/hub/api",
                              token="t")
    for path in ("a.ipynb", "reports/q3 été.ipynb", "x%20y/100%.ipynb"):
        h = broker._headers(Caller(user="ana", kernel_id="k1", notebook_path=path))
        assert h[NOTEBOOK_HEADER].isascii() and declared_notebook(h) == path
    assert NOTEBOOK_HEADER not in broker._headers(Caller(user="ana", kernel_id="k1"))  # no session: nothing sent
    assert NOTEBOOK_HEADER not in broker._headers(Caller(user="ana", notebook_path="n" * (MAX_NOTEBOOK_PATH + 1)))
    for raw in ("", "%ff%fe", "a%0Ab.ipynb", "a%7Fb", quote("n" * (MAX_NOTEBOOK_PATH + 1)), "é.ipynb"):
        assert declared_notebook({NOTEBOOK_HEADER: raw}) is None, raw
    assert declared_notebook({}) is None


@pytest.fixture
def gov(tmp_path):
    (tmp_path / "p.rego").write_text(POLICY)
    g = Governance(policy=PolicyEngine([str(tmp_path / "p.rego")]), audit=AuditLog(tmp_path / "audit.jsonl"))
    yield g
    g.close()


def test_a_declared_notebook_is_audited_and_never_a_policy_input(gov, tmp_path):
    chat = dict(user="ana", action="chat", via="kernel", kernel_id="k1", model="gpt", litellm_model="openai/gpt-4o-mini",
                host="api.openai.com", host_allowed=True, max_tokens=10, prompt_chars=10)

    async def run():
        ticket = await gov.admit(Context(declared_notebook="reports/q3.ipynb", **chat))
        assert gov.input_for(ticket.ctx)["notebook_path"] is None
        await gov.finish(ticket, tokens_in=3, tokens_out=2)
        with pytest.raises(Refused) as refused:  # control: the same path, vouched (tier 2), is denied
            await gov.admit(Context(notebook_path="reports/q3.ipynb", **chat))
        assert "notebook reports/q3.ipynb" in refused.value.message

    asyncio.run(run())
    recs = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(r["type"], r["decision"]) for r in recs] == [("decision", "allow"), ("call", "allow"), ("decision", "deny")]
    declared = [r for r in recs if r.get("notebook_declared")]
    vouched = [r for r in recs if r.get("decision") == "deny"]
    assert len(declared) == 2 and all(r["notebook"] == "reports/q3.ipynb" for r in declared), recs
    assert vouched and vouched[0]["notebook"] == "reports/q3.ipynb" and "notebook_declared" not in vouched[0]
