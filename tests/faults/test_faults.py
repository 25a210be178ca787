"""Faults under a running broker (issue 11): each ends in a clear error naming what failed, no secret in
any response or log, and an audit record of the failed call. A private OpenBao per test (these tests
revoke its tokens and delete its secrets), the stand-in provider, the broker in a real Jupyter server."""
import json

import pytest

from jupyter_securellm.testing.leaks import assert_no_secret
from jupyter_securellm.testing.pytest_plugin import BROKER_POLICY, BROKER_POLICY_PATHS

MSG = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def openbao(openbao_factory):
    """A private server instead of the shared one: these tests revoke tokens and delete secrets."""
    b = openbao_factory()
    b.read_policy(BROKER_POLICY, BROKER_POLICY_PATHS)
    return b


@pytest.fixture
def audit_path(tmp_path):
    return tmp_path / "audit.jsonl"


@pytest.fixture
def securellm_config(securellm_config, audit_path):
    securellm_config["secret_cache_ttl"] = 0.0  # every call reads Vault: the fault shows on the next call
    securellm_config["audit_log_path"] = str(audit_path)
    return securellm_config


@pytest.fixture
def jp_server_config(securellm_server_config):
    return securellm_server_config


def audit_records(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_clean(key, *texts):
    for i, text in enumerate(texts):
        assert_no_secret(text, key, f"text #{i}")
        assert "Traceback" not in text


async def chat(broker_api, **kw):
    return await broker_api("chat/completions", {"model": "gpt", "messages": MSG, **kw}, request_timeout=120)


async def test_vault_token_revoked_mid_session(broker_api, openbao, server_token_file, provider,
                                               vault_provider_key, server_log, audit_path):
    assert (await chat(broker_api))[0] == 200
    openbao.revoke_token(server_token_file.read_text().strip())
    code, body, raw = await chat(broker_api)
    assert code == 503, raw
    assert body["error"]["type"] == "vault_unavailable"
    assert "could not log in to Vault" in body["error"]["message"]
    assert len(provider.requests) == 1  # nothing was sent without a key
    assert_clean(vault_provider_key, raw, server_log(), audit_path.read_text())
    last = audit_records(audit_path)[-1]
    assert "vault_unavailable" in json.dumps(last), last


async def test_secret_deleted(broker_api, openbao, provider, vault_provider_key, server_log, audit_path):
    assert (await chat(broker_api))[0] == 200
    openbao.delete_secret("llm/openai")
    code, body, raw = await chat(broker_api)
    assert code == 404 and body["error"]["type"] == "not_found", raw
    msg = body["error"]["message"]
    assert "llm/openai" in msg and "api_key" in msg
    assert len(provider.requests) == 1
    assert_clean(vault_provider_key, raw, server_log(), audit_path.read_text())
    assert "not_found" in json.dumps(audit_records(audit_path)[-1])


async def test_secret_field_renamed(broker_api, openbao, provider, vault_provider_key, server_log, audit_path):
    assert (await chat(broker_api))[0] == 200
    openbao.write_secret("llm/openai", {"openai_key": vault_provider_key})  # the field the config names is gone
    code, body, raw = await chat(broker_api)
    assert code == 404 and body["error"]["type"] == "not_found", raw
    msg = body["error"]["message"]
    assert "llm/openai" in msg and "'api_key'" in msg
    assert len(provider.requests) == 1
    assert_clean(vault_provider_key, raw, server_log(), audit_path.read_text())
    assert "not_found" in json.dumps(audit_records(audit_path)[-1])


async def test_provider_hangs_up_mid_stream(broker_api, provider, vault_provider_key, server_log, audit_path):
    provider.break_after = 1
    code, _, raw = await chat(broker_api, stream=True)
    assert code == 200  # the headers were sent before the provider hung up
    events = [json.loads(line[6:]) for line in raw.splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    assert events and "error" in events[-1], raw
    err = events[-1]["error"]
    assert err["type"] == "provider_error" and "provider" in err["message"].lower(), err
    assert "data: [DONE]" not in raw  # a cut answer is not passed off as complete
    assert_clean(vault_provider_key, raw, server_log(), audit_path.read_text())
    last = audit_records(audit_path)[-1]
    assert "provider_error" in json.dumps(last), last
