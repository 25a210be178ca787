"""`input.notebook_path` and the audit's `notebook` come from the Jupyter session that owns the calling
kernel: real kernels started through the sessions REST API, a real server, OpenBao and the stand-in provider."""
from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from jupyter_securellm.testing.server_fixtures import audit_records  # noqa: E402

POLICY = """package jupyter_securellm.authz

deny contains "the payroll notebook may not chat" if {
	input.action == "chat"
	is_string(input.notebook_path)  # null for a kernel without a notebook; endswith(null) would error (deny)
	endswith(input.notebook_path, "payroll.ipynb")
}
"""


@pytest.fixture
def policy():
    return POLICY


@pytest.fixture
def jp_server_config(governed_server_config):
    return governed_server_config


async def _session_kernel(jp_fetch, kernels, path: str) -> tuple[str, str]:
    """Open `path` as a notebook session (a real kernel), return (kernel id, its broker token)."""
    r = await jp_fetch("api", "sessions", method="POST", body=json.dumps(
        {"path": path, "name": path.rsplit("/", 1)[-1], "type": "notebook", "kernel": {"name": "python3"}}))
    kid = json.loads(r.body)["kernel"]["id"]
    token = (await kernels.run(kid, "import os; print(os.environ['JUPYTER_SECURELLM_KERNEL_TOKEN'])")).strip()
    return kid, token


async def _chat(jp_fetch, token):
    r = await jp_fetch("jupyter-securellm", "v1", "chat", "completions", method="POST", raise_error=False,
                       request_timeout=120, headers={"X-SecureLLM-Token": token, "Authorization": ""},
                       body=json.dumps({"model": "gpt", "max_tokens": 10,
                                        "messages": [{"role": "user", "content": "hi"}]}))
    return r.code, json.loads(r.body)


def _records(gov_dir) -> list[dict]:
    return audit_records(gov_dir / "audit.jsonl")


async def test_policy_sees_the_notebook_of_the_calling_kernel(jp_fetch, kernels, provider, gov_dir):
    denied_kid, denied_tok = await _session_kernel(jp_fetch, kernels, "hr/payroll.ipynb")
    ok_kid, ok_tok = await _session_kernel(jp_fetch, kernels, "lab/analysis.ipynb")

    code, body = await _chat(jp_fetch, denied_tok)
    assert code == 403 and body["error"]["type"] == "policy_denied"
    assert "the payroll notebook may not chat" in body["error"]["message"]
    assert provider.requests == []
    rec = [r for r in _records(gov_dir) if r.get("kernel_id") == denied_kid][-1]
    assert rec["decision"] == "deny" and rec["notebook"] == "hr/payroll.ipynb" and rec["via"] == "kernel"

    code, body = await _chat(jp_fetch, ok_tok)
    assert code == 200, body
    assert len(provider.requests) == 1
    call = [r for r in _records(gov_dir) if r["type"] == "call" and r.get("kernel_id") == ok_kid][-1]
    assert call["notebook"] == "lab/analysis.ipynb" and call["status"] == "ok"


async def test_a_renamed_notebook_shows_its_new_path_and_a_bare_kernel_has_none(jp_fetch, kernels, provider,
                                                                                gov_dir):
    kid, tok = await _session_kernel(jp_fetch, kernels, "lab/draft.ipynb")
    sid = [s["id"] for s in json.loads((await jp_fetch("api", "sessions")).body) if s["kernel"]["id"] == kid][0]
    await jp_fetch("api", "sessions", sid, method="PATCH", body=json.dumps({"path": "hr/payroll.ipynb"}))
    code, body = await _chat(jp_fetch, tok)
    assert code == 403 and "payroll" in body["error"]["message"]

    bare = await kernels.start()  # /api/kernels: no session, no notebook
    bare_tok = (await kernels.run(bare, "import os; print(os.environ['JUPYTER_SECURELLM_KERNEL_TOKEN'])")).strip()
    code, body = await _chat(jp_fetch, bare_tok)
    assert code == 200, body
    call = [r for r in _records(gov_dir) if r["type"] == "call" and r.get("kernel_id") == bare][-1]
    assert call["notebook"] is None
