"""REST API through a real Jupyter server (allow_unauthenticated_access=False) and a real OpenBao."""
import json

import pytest

from jupyter_securellm.detect import fake_secret


async def test_models_and_status_with_jupyter_auth(broker_api, openbao):
    code, body, _ = await broker_api("models")
    assert code == 200
    assert body == {"object": "list", "data": [{"id": "gpt", "object": "model", "owned_by": "jupyter-securellm"}]}
    code, body, _ = await broker_api("status")
    assert code == 200 and body["broker"] == "ok" and body["models"] == ["gpt"]
    assert body["vault"] == {"url": openbao.url, "reachable": True, "sealed": False, "auth_method": "token"}
    assert body["budget"] is None and body["alerts"] == []


@pytest.mark.parametrize("path,body", [("models", None), ("status", None),
                                       ("chat/completions", {"model": "gpt", "messages": []}),
                                       ("secrets/get", {"path": "db/analytics", "key": "password"})])
async def test_unauthenticated_is_refused(broker_api, path, body, provider):
    code, parsed, raw = await broker_api(path, body, auth=False)
    assert code in (401, 403)
    assert parsed["error"]["type"] in ("unauthorized", "policy_denied")
    assert provider.requests == []


async def test_forged_kernel_token_is_401(broker_api):
    code, parsed, _ = await broker_api("models", headers={"X-SecureLLM-Token": "forged"}, auth=False)
    assert code == 401 and parsed["error"]["type"] == "unauthorized"


async def test_chat_completion_through_vault_and_litellm(broker_api, provider, vault_provider_key, server_log):
    code, body, raw = await broker_api("chat/completions", {
        "model": "gpt", "messages": [{"role": "user", "content": "hello broker"}], "temperature": 0})
    assert code == 200, raw
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "echo: hello broker"
    assert len(provider.requests) == 1 and provider.requests[0].auth_ok  # Bearer == key in Vault
    assert vault_provider_key not in raw and vault_provider_key not in server_log()


async def test_chat_stream_sse(broker_api, provider, vault_provider_key):
    code, _, raw = await broker_api("chat/completions", {
        "model": "gpt", "stream": True, "messages": [{"role": "user", "content": "one two three"}]})
    assert code == 200, raw
    events = [e[len("data: "):] for e in raw.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == "echo: one two three"
    assert provider.requests[-1].auth_ok and vault_provider_key not in raw


@pytest.mark.parametrize("body,etype,status", [
    ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, "not_found", 404),
    ({"messages": [{"role": "user", "content": "x"}]}, "invalid_request", 400),
    ({"model": "gpt", "messages": "hi"}, "invalid_request", 400),
    ({"model": "gpt", "messages": [{"role": "hacker", "content": "x"}]}, "invalid_request", 400),
    ({"model": "gpt", "messages": [{"role": "user", "content": "x"}], "api_key": "mine"}, "invalid_request", 400),
    ({"model": "gpt", "messages": [{"role": "user", "content": "x"}], "extra_headers": {}}, "invalid_request", 400),
    ({"model": "gpt", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "invalid_request", 400),
    ("not json", "invalid_request", 400),
])
async def test_bad_requests_are_4xx_and_say_why(broker_api, provider, body, etype, status):
    code, parsed, _ = await broker_api("chat/completions", body)
    assert code == status and parsed["error"]["type"] == etype
    assert parsed["error"]["message"].endswith(".")
    assert provider.requests == []


async def test_api_base_override_to_other_host_is_refused(broker_api, provider, other_host):
    code, parsed, _ = await broker_api("chat/completions", {
        "model": "gpt", "messages": [{"role": "user", "content": "x"}], "api_base": other_host.url + "/v1"})
    assert code == 403 and parsed["error"]["type"] == "egress_denied"
    assert other_host.requests == [] and provider.requests == []


async def test_prompt_dlp_blocks_secrets_before_anything_leaves(broker_api, provider):
    leaked = fake_secret("github-token")
    code, parsed, raw = await broker_api("chat/completions", {
        "model": "gpt", "messages": [{"role": "user", "content": f"debug this: token={leaked}"}]})
    assert code == 422 and parsed["error"]["type"] == "dlp_blocked"
    assert "github-token" in parsed["error"]["message"] and leaked not in raw
    assert provider.requests == []


async def test_provider_echo_of_the_key_is_redacted(broker_api, provider, vault_provider_key):
    provider.reply = f"sure, the key is {vault_provider_key} ok"
    code, body, raw = await broker_api("chat/completions", {
        "model": "gpt", "messages": [{"role": "user", "content": "x"}]})
    assert code == 200 and vault_provider_key not in raw
    assert "[REDACTED:" in body["choices"][0]["message"]["content"]
    code, _, raw = await broker_api("chat/completions", {
        "model": "gpt", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert code == 200 and vault_provider_key not in raw and "[REDACTED:" in raw


async def test_secrets_get_user_paths_only(broker_api, db_password, vault_provider_key):
    code, body, _ = await broker_api("secrets/get", {"path": "db/analytics", "key": "password"})
    assert code == 200 and body == {"value": db_password}
    code, body, raw = await broker_api("secrets/get", {"path": "llm/openai", "key": "api_key"})
    assert code == 403 and body["error"]["type"] == "policy_denied" and vault_provider_key not in raw
    code, body, _ = await broker_api("secrets/get", {"path": "users/x", "key": "k"})
    assert code == 403


async def test_wrong_method_answers_in_the_contract_shape(broker_api):
    code, body, _ = await broker_api("chat/completions", method="GET")
    assert code == 405 and set(body["error"]) == {"type", "message"}
    code, body, _ = await broker_api("models", "{}", method="POST")
    assert code == 405 and body["error"]["type"] == "invalid_request"


async def test_dlp_covers_parts_tool_definitions_and_names(broker_api, provider):
    leaked = fake_secret("stripe-secret-key")
    bodies = [
        {"model": "gpt", "messages": [{"role": "user", "content": [{"type": "text", "text": f"k={leaked}"}]}]},
        {"model": "gpt", "messages": [{"role": "user", "content": "x"}],
         "tools": [{"type": "function", "function": {"name": "f", "description": f"use {leaked}",
                                                     "parameters": {"type": "object"}}}]},
        {"model": "gpt", "messages": [{"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": f'{{"k": "{leaked}"}}'}}]},
            {"role": "user", "content": "x"}]},
    ]
    for body in bodies:
        code, parsed, raw = await broker_api("chat/completions", body)
        assert code == 422 and parsed["error"]["type"] == "dlp_blocked" and not (leaked in raw)
    assert provider.requests == []
