"""Vault killed, restarted and sealed under a running broker: fail closed with an error naming
Vault (never a stack trace or a key), recover without restarting Jupyter. Own OpenBao per test."""
import asyncio

import pytest

from jupyter_securellm.testing.openbao import OpenBao

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def openbao(tmp_path):
    """A private server instead of the shared one: these tests kill and seal it."""
    b = OpenBao(tmp_path / "bao").start()
    b.enable_kv("secret")
    b.read_policy("securellm-broker", ["llm/*", "db/*", "users/*"])
    yield b
    b.close()


@pytest.fixture
def securellm_config(securellm_config):
    securellm_config["secret_cache_ttl"] = 1.0
    return securellm_config


async def chat(broker_api):
    return await broker_api("chat/completions", {"model": "gpt", "messages": MSG})


async def test_vault_killed_then_restarted(broker_api, openbao, provider, vault_provider_key, server_log):
    assert (await chat(broker_api))[0] == 200
    openbao.kill()
    code, _, _ = await chat(broker_api)
    assert code == 200  # the cached key is still valid (TTL 1 s)
    await asyncio.sleep(1.3)
    code, body, raw = await chat(broker_api)
    assert code == 503 and body["error"]["type"] == "vault_unavailable"
    assert "Vault" in body["error"]["message"] and "Traceback" not in raw and vault_provider_key not in raw
    code, status, _ = await broker_api("status")
    assert code == 200 and status["vault"]["reachable"] is False
    openbao.start()
    code, _, _ = await chat(broker_api)
    assert code == 200
    assert vault_provider_key not in server_log()


async def test_sealed_vault_fails_closed(broker_api, openbao, provider):
    assert (await chat(broker_api))[0] == 200
    openbao.seal()
    try:
        await asyncio.sleep(1.3)
        code, body, _ = await chat(broker_api)
        assert code == 503 and body["error"]["type"] == "vault_unavailable"
        assert "sealed" in body["error"]["message"].lower()
        code, status, _ = await broker_api("status")
        assert status["vault"]["sealed"] is True
    finally:
        openbao.unseal()
    assert (await chat(broker_api))[0] == 200
    assert len(provider.requests) == 2  # nothing was sent while Vault was sealed


async def test_missing_secret_is_not_found(broker_api, openbao, provider):
    openbao.delete_secret("llm/openai")
    code, body, _ = await chat(broker_api)
    assert code == 404 and body["error"]["type"] == "not_found" and "Vault" in body["error"]["message"]
    assert provider.requests == []


async def test_kernel_call_failing_with_503_logs_no_token(kernels, broker_api, openbao, provider, server_log):
    """A kernel-token call that fails server-side (5xx access log, warnings): the token never shows."""
    kid = await kernels.start()
    tok = (await kernels.run(kid, "import os; print(os.environ['JUPYTER_SECURELLM_KERNEL_TOKEN'])")).strip()
    openbao.kill()
    await asyncio.sleep(1.3)
    code, body, _ = await broker_api("chat/completions", {"model": "gpt", "messages": MSG},
                                     headers={"X-SecureLLM-Token": tok}, auth=False)
    assert code == 503 and body["error"]["type"] == "vault_unavailable"
    log = server_log()
    assert "503 POST" in log
    assert not (tok in log)
    openbao.start()
