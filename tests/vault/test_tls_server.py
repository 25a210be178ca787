"""A real broker call with Vault over mutual TLS: the in-process Jupyter server, configured only through
`c.SecureLLM.vault_ca_cert` / `vault_client_cert` / `vault_client_key`, reads the provider key from an
OpenBao that requires client certificates, and the stand-in provider receives exactly that key."""
import pytest

from jupyter_securellm.testing.openbao import OpenBao
from jupyter_securellm.testing.pytest_plugin import BROKER_POLICY, BROKER_POLICY_PATHS
from jupyter_securellm.testing.providers import TestCA


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("vault-ca"))


@pytest.fixture(scope="module")
def openbao(ca, tmp_path_factory):
    """Replaces the session's plain-http OpenBao for this module: HTTPS with client certificates required."""
    bao = OpenBao(tmp_path_factory.mktemp("bao-mtls"), tls_files=ca.issue("vault", hosts=("127.0.0.1",)),
                  ca_cert=ca.ca_cert, client_ca=ca.ca_cert, admin_cert=ca.issue("bao-admin", client=True))
    bao.start()
    bao.enable_kv("secret")
    bao.read_policy(BROKER_POLICY, BROKER_POLICY_PATHS)
    yield bao
    bao.close()


@pytest.fixture
def securellm_config(securellm_config, ca):
    cert, key = ca.issue("broker", client=True)
    return {**securellm_config, "vault_ca_cert": ca.ca_cert, "vault_client_cert": cert, "vault_client_key": key}


@pytest.fixture
def jp_server_config(securellm_server_config):
    return securellm_server_config


async def test_chat_completion_reads_its_key_over_mutual_tls(broker_api, openbao, provider, vault_provider_key,
                                                             server_log):
    assert openbao.url.startswith("https://")
    code, body, raw = await broker_api("chat/completions", {
        "model": "gpt", "messages": [{"role": "user", "content": "over tls"}], "temperature": 0})
    assert code == 200, raw
    assert body["choices"][0]["message"]["content"] == "echo: over tls"
    assert len(provider.requests) == 1 and provider.requests[0].auth_ok  # the key Vault holds, over mTLS
    assert vault_provider_key not in raw and vault_provider_key not in server_log()
    code, status, raw = await broker_api("status")
    assert code == 200, raw
    assert status["vault"]["reachable"] is True and status["vault"]["sealed"] is False  # health probe: mTLS too
