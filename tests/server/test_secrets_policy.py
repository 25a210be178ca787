"""secrets/get never returns a provider key, whatever user_secret_paths says (tier 2)."""
import pytest


@pytest.fixture
def securellm_config(securellm_config):
    securellm_config["user_secret_paths"] = ["*", "**", "llm/*", "db/*", "{user}/*"]
    return securellm_config


async def test_provider_key_never_returned_even_with_catch_all_globs(broker_api, openbao, vault_provider_key, db_password):
    for path in ("llm/openai", "/llm/openai/", "llm//openai"):
        code, body, raw = await broker_api("secrets/get", {"path": path, "key": "api_key"})
        assert code in (400, 403) and not (vault_provider_key in raw)
    # the same key stored under an innocent-looking path is still refused
    openbao.write_secret("db/copy", {"password": vault_provider_key})
    code, body, raw = await broker_api("secrets/get", {"path": "db/copy", "key": "password"})
    assert code == 403 and body["error"]["type"] == "policy_denied" and not (vault_provider_key in raw)
    code, body, _ = await broker_api("secrets/get", {"path": "db/analytics", "key": "password"})
    assert code == 200 and body["value"] == db_password
    code, body, _ = await broker_api("secrets/get", {"path": "../llm/openai", "key": "api_key"})
    assert code == 400

