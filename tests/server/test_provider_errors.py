"""Provider failures through the real stand-in: key rotation (401 -> re-read Vault -> retry),
429, 500, slow and broken streams. Errors follow the contract and never carry the key."""
import json

import pytest

from jupyter_securellm.detect import fake_secret

MSG = [{"role": "user", "content": "hi"}]


def sse(raw):
    return [e[len("data: "):] for e in raw.split("\n\n") if e]


async def test_key_rotation_rereads_vault_once(broker_api, openbao, provider, vault_provider_key, server_log):
    code, _, _ = await broker_api("chat/completions", {"model": "gpt", "messages": MSG})
    assert code == 200  # the old key is now cached in the server
    new_key = fake_secret("openai-api-key")
    openbao.write_secret("llm/openai", {"api_key": new_key})
    provider.key = new_key
    code, body, raw = await broker_api("chat/completions", {"model": "gpt", "messages": MSG})
    assert code == 200, raw
    assert [r.auth_ok for r in provider.requests] == [True, False, True]
    # streaming takes the same path
    newer = fake_secret("openai-api-key")
    openbao.write_secret("llm/openai", {"api_key": newer})
    provider.key = newer
    code, _, raw = await broker_api("chat/completions", {"model": "gpt", "stream": True, "messages": MSG})
    assert code == 200 and sse(raw)[-1] == "[DONE]"
    log = server_log()
    for k in (vault_provider_key, new_key, newer):
        assert k not in raw and k not in log


async def test_key_wrong_in_vault_gives_provider_auth(broker_api, openbao, provider):
    openbao.write_secret("llm/openai", {"api_key": fake_secret("openai-api-key")})  # provider does not know it
    code, body, _ = await broker_api("chat/completions", {"model": "gpt", "messages": MSG})
    assert code == 502 and body["error"]["type"] == "provider_auth"
    assert len(provider.requests) == 2  # first try + one retry after re-reading Vault, no more


@pytest.mark.parametrize("status,etype,http", [(429, "rate_limited", 429), (500, "provider_error", 502)])
async def test_provider_http_errors(broker_api, provider, status, etype, http):
    provider.fail_status = status
    code, body, _ = await broker_api("chat/completions", {"model": "gpt", "messages": MSG})
    assert code == http and body["error"]["type"] == etype
    code, body, _ = await broker_api("chat/completions", {"model": "gpt", "stream": True, "messages": MSG})
    assert code == http and body["error"]["type"] == etype
    assert len(provider.requests) == 2  # the broker does not hammer a failing provider


async def test_broken_stream_ends_with_error_event(broker_api, provider):
    code, _, raw = await broker_api("chat/completions", {
        "model": "gpt", "stream": True, "messages": [{"role": "user", "content": "a b c d e [[provider:break=2]]"}]})
    assert code == 200
    events = sse(raw)
    assert events[-1] != "[DONE]"
    last = json.loads(events[-1])
    assert last["error"]["type"] in ("provider_error", "timeout")


