"""The server logs in to Vault with AppRole (response-wrapped secret id) and reads per-user keys
({user} in the path) with the shared fallback; the provider sees exactly the key Vault holds."""
import pytest

from jupyter_securellm.detect import fake_secret


@pytest.fixture
def user_keys(openbao, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    mine, shared = fake_secret("openai-api-key"), fake_secret("openai-api-key")
    openbao.write_secret("users/alice/openai", {"api_key": mine})
    openbao.write_secret("users/openai", {"api_key": shared})
    yield mine, shared
    openbao.delete_secret("users/alice/openai")


@pytest.fixture
def approle_files(openbao, tmp_path):
    role_id = openbao.create_approle("jupyter-broker", ["securellm-broker"])
    wrapped = openbao.approle_secret_id("jupyter-broker", wrap_ttl="120s")
    p = tmp_path / "secret-id"
    p.write_text(wrapped)
    return role_id, p


@pytest.fixture
def securellm_config(securellm_config, approle_files, user_keys, provider):
    role_id, secret_id_path = approle_files
    securellm_config.update({
        "vault_auth_method": "approle", "vault_approle_role_id": role_id,
        "vault_approle_secret_id_path": str(secret_id_path), "vault_token_path": "",
        "secret_cache_ttl": 0.0,
    })
    securellm_config["models"]["gpt"]["secret_path"] = "users/{user}/openai"
    provider.key = user_keys[0]
    return securellm_config


async def test_approle_and_per_user_key_with_fallback(broker_api, openbao, provider, user_keys):
    mine, shared = user_keys
    msg = {"model": "gpt", "messages": [{"role": "user", "content": "x"}]}
    code, _, raw = await broker_api("chat/completions", msg)
    assert code == 200, raw
    assert provider.requests[-1].auth_ok  # alice's own key
    openbao.delete_secret("users/alice/openai")
    provider.key = shared
    code, _, raw = await broker_api("chat/completions", msg)
    assert code == 200 and provider.requests[-1].auth_ok  # the shared fallback
    code, status, _ = await broker_api("status")
    assert status["user"] == "alice" and status["vault"]["auth_method"] == "approle"
    assert not (mine in raw or shared in raw)
