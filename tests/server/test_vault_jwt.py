"""The server logs in to Vault with a JWT from a file (e.g. issued by JupyterHub or Kubernetes)."""
import pytest


@pytest.fixture
def securellm_config(securellm_config, openbao, tmp_path):
    issuer = openbao.enable_jwt()
    openbao.create_jwt_role("jupyter-broker", ["securellm-broker"])
    jwt_file = tmp_path / "jwt"
    jwt_file.write_text(issuer.mint("jupyter-server"))
    securellm_config.update({"vault_auth_method": "jwt", "vault_jwt_path": str(jwt_file),
                             "vault_role": "jupyter-broker", "vault_token_path": ""})
    return securellm_config


async def test_jwt_login_then_chat(broker_api, provider, vault_provider_key, server_log):
    code, body, raw = await broker_api("chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "jwt"}]})
    assert code == 200, raw
    assert provider.requests[-1].auth_ok
    code, status, _ = await broker_api("status")
    assert status["vault"]["auth_method"] == "jwt" and status["vault"]["reachable"] is True
    assert not (vault_provider_key in server_log())
