"""Tier 2: the mitigation for Vault credentials on disk. With a response-wrapped AppRole secret id
(single use, consumed when the server logs in), a kernel that reads the file afterwards can
neither unwrap it nor log in with it, so it cannot read the provider key from OpenBao itself.
(The plain secret-id file is the residual risk proven in test_tier2_process.py.)
"""
from __future__ import annotations

import json
import pathlib

import pytest

from jupyter_securellm.testing.pytest_plugin import BROKER_POLICY


@pytest.fixture
def jp_server_config(securellm_server_config):  # the in-process broker server (testing/server_fixtures.py)
    return securellm_server_config


@pytest.fixture
def wrapped_secret_id(openbao, tmp_path):
    role_id = openbao.create_approle("redteam-broker", [BROKER_POLICY])
    p = tmp_path / "secret-id"
    p.write_text(openbao.approle_secret_id("redteam-broker", wrap_ttl="300s"))
    p.chmod(0o600)
    return role_id, p


@pytest.fixture
def securellm_config(openbao, provider, vault_provider_key, wrapped_secret_id):
    role_id, sid = wrapped_secret_id
    return {"vault_url": openbao.url, "vault_auth_method": "approle", "vault_approle_role_id": role_id,
            "vault_approle_secret_id_path": str(sid),
            "models": {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai", "secret_key": "api_key",
                               "api_base": provider.url + "/v1", "allow_http": True}},
            "allowed_hosts": [f"127.0.0.1:{provider.port}"], "preload_litellm": False}


_STEAL = r'''
import json, os, urllib.request, urllib.error
def broker():
    b = {"model": "gpt", "messages": [{"role": "user", "content": "warm up"}]}
    r = urllib.request.Request(os.environ["JUPYTER_SECURELLM_URL"] + "/chat/completions", data=json.dumps(b).encode(),
                               headers={"X-SecureLLM-Token": os.environ["JUPYTER_SECURELLM_KERNEL_TOKEN"],
                                        "Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(r, timeout=60).status
    except urllib.error.HTTPError as e:
        return e.code
if WARM:
    assert broker() == 200
def post(path, body, tok=None):
    h = {"Content-Type": "application/json"}
    if tok:
        h["X-Vault-Token"] = tok
    r = urllib.request.Request(BAO + path, data=json.dumps(body).encode(), headers=h)
    try:
        return urllib.request.urlopen(r, timeout=20).read().decode()
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code} " + e.read().decode()
wrapped = open(SID).read().strip()
out = {"unwrap": post("/v1/sys/wrapping/unwrap", {}, wrapped),
       "unwrap2": post("/v1/sys/wrapping/unwrap", {"token": wrapped}),
       "login": post("/v1/auth/approle/login", {"role_id": ROLE, "secret_id": wrapped})}
try:
    sid = json.loads(out["unwrap"])["data"]["secret_id"]  # the kernel unwrapped it first
    out["login"] = post("/v1/auth/approle/login", {"role_id": ROLE, "secret_id": sid})
except Exception:
    pass
try:
    tok = json.loads(out["login"])["auth"]["client_token"]
    out["read"] = urllib.request.urlopen(urllib.request.Request(BAO + "/v1/secret/data/llm/openai",
                                         headers={"X-Vault-Token": tok}), timeout=20).read().decode()
except Exception as e:
    out["read"] = type(e).__name__
b = {"model": "gpt", "messages": [{"role": "user", "content": "still works"}]}
r = urllib.request.Request(os.environ["JUPYTER_SECURELLM_URL"] + "/chat/completions", data=json.dumps(b).encode(),
                           headers={"X-SecureLLM-Token": os.environ["JUPYTER_SECURELLM_KERNEL_TOKEN"],
                                    "Content-Type": "application/json"})
try:
    out["broker"] = urllib.request.urlopen(r, timeout=60).status
except urllib.error.HTTPError as e:
    out["broker"] = e.code
json.dump(out, open(LOOT, "w"))
'''


async def _attack(kernels, openbao, wrapped_secret_id, tmp_path, warm: bool) -> dict:
    role_id, sid = wrapped_secret_id
    kid = await kernels.start()
    loot = tmp_path / "vault.json"
    text = await kernels.run(kid, f"WARM = {warm}\nBAO = {openbao.url!r}\nSID = {str(sid)!r}\nROLE = {role_id!r}\nLOOT = {str(loot)!r}\n"
                           + _STEAL, timeout=120)
    assert loot.exists(), rt.strip_ansi(text)[-800:]
    return json.loads(loot.read_text())


async def test_wrapped_secret_id_consumed_by_the_server_is_useless_to_the_kernel(kernels, openbao, wrapped_secret_id,
                                                                                  vault_provider_key, tmp_path, rt):
    """After the server's first Vault login (here: a first LLM call) the file is a spent token."""
    out = await _attack(kernels, openbao, wrapped_secret_id, tmp_path, warm=True)
    assert out["broker"] == 200, "control: the server logged in with the wrapped secret id and served a call"
    assert out["unwrap"].startswith("HTTP 4") and out["unwrap2"].startswith("HTTP 4"), "the wrapping token was still valid"
    assert out["login"].startswith("HTTP 4"), "the wrapping token worked as a secret id"
    rt.assert_no_secret(json.dumps(out), vault_provider_key, "what the kernel got from OpenBao")


async def test_wrapped_secret_id_is_unwrapped_before_any_kernel_runs(kernels, openbao, wrapped_secret_id, vault_provider_key,
                                                                     tmp_path, rt):
    out = await _attack(kernels, openbao, wrapped_secret_id, tmp_path, warm=False)
    rt.assert_no_secret(json.dumps(out), vault_provider_key, "what the kernel got from OpenBao with the unwrapped secret id")
