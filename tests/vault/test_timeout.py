"""`c.SecureLLM.vault_timeout`: how long each Vault request may take before the broker fails closed.

A real OpenBao behind `SlowProxy` (each request held `HELD` seconds): a timeout shorter than the delay
fails with an error naming Vault, its URL and the timeout, and nothing leaks; a longer one succeeds.
"""
from __future__ import annotations

import time

import pytest

from jupyter_securellm.testing.leaks import assert_no_secret
from jupyter_securellm.testing.slowproxy import SlowProxy
from jupyter_securellm.vault import VaultClient, VaultSettings, VaultTimeout

HELD = 1.0  # seconds SlowProxy holds each Vault request


@pytest.fixture
def slow_vault(openbao):
    with SlowProxy(openbao.url) as proxy:
        yield proxy


@pytest.fixture
def secret(openbao, unique_path, write_file):
    value = "v-" + unique_path + "-" + str(time.time_ns())
    openbao.write_secret(f"{unique_path}/k", {"api_key": value})
    token = openbao.create_token([openbao.read_policy(f"r-{unique_path}", [f"{unique_path}/*"])],
                                 ttl="1h")["client_token"]
    return {"path": f"{unique_path}/k", "value": value, "token": token, "token_file": write_file("tok", token)}


def client(url, secret, timeout):
    return VaultClient(VaultSettings(url=url, token_path=secret["token_file"], timeout=timeout, secret_cache_ttl=0))


def test_a_timeout_shorter_than_vault_fails_closed_naming_vault_and_the_timeout(slow_vault, secret):
    vc = client(slow_vault.url, secret, timeout=0.3)
    assert vc.read_secret(secret["path"], "api_key") == secret["value"]  # fast Vault: fine
    slow_vault.delay = HELD
    t0 = time.monotonic()
    with pytest.raises(VaultTimeout) as ei:
        vc.read_secret(secret["path"], "api_key")
    took = time.monotonic() - t0
    msg = str(ei.value)
    assert msg.startswith(f"Vault at {slow_vault.url} timed out: no answer within 0.3 s "
                          "(c.SecureLLM.vault_timeout) while reading secret/"), msg
    assert "raise vault_timeout" in msg and ei.value.timeout == 0.3
    assert took < HELD, f"the client waited {took:.2f} s, longer than Vault's delay"
    for text in (msg, repr(ei.value)):
        assert_no_secret(text, secret["value"], "the timeout error")
        assert_no_secret(text, secret["token"], "the timeout error")
    # a login that times out says so (not "while reading the request")
    with pytest.raises(VaultTimeout, match=r"within 0\.3 s \(c\.SecureLLM\.vault_timeout\) while logging in "
                                           r"with token auth"):
        client(slow_vault.url, secret, timeout=0.3).login()


def test_a_timeout_longer_than_vault_succeeds(slow_vault, secret):
    slow_vault.delay = HELD
    vc = client(slow_vault.url, secret, timeout=HELD + 3)
    t0 = time.monotonic()
    assert vc.read_secret(secret["path"], "api_key") == secret["value"]
    assert time.monotonic() - t0 >= 2 * HELD * 0.9, "login and read were both held: the proxy did its job"


def test_the_trait_is_validated_and_reaches_the_client():
    from jupyter_securellm.server.app import ConfigError, SecureLLM

    assert SecureLLM().vault_settings().timeout == 5.0  # the default stays 5 s
    assert SecureLLM(vault_timeout=12.5).vault_settings().timeout == 12.5
    for bad in (0, -1, 121):
        with pytest.raises(ConfigError, match=r"^c\.SecureLLM\.vault_timeout: must be more than 0 and at most 120"):
            SecureLLM(vault_timeout=bad)
    with pytest.raises(ValueError, match="vault_timeout"):
        VaultSettings(timeout=0).validate()


class TestThroughTheServer:
    """The trait in a real Jupyter server: a call whose key needs a slow Vault gets 503 naming the timeout."""

    @pytest.fixture
    def securellm_config(self, securellm_config, slow_vault):
        securellm_config.update(vault_url=slow_vault.url, vault_timeout=0.4, secret_cache_ttl=0)
        return securellm_config

    @pytest.fixture
    def jp_server_config(self, securellm_server_config):
        return securellm_server_config

    async def test_a_slow_vault_answers_503_naming_vault_timeout(self, broker_api, slow_vault, provider,
                                                                 vault_provider_key, server_log):
        body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
        code, _, raw = await broker_api("chat/completions", body, request_timeout=120)
        assert code == 200, raw  # Vault fast: fine
        slow_vault.delay = HELD
        n = len(provider.requests)
        code, answer, raw = await broker_api("chat/completions", body, request_timeout=60)
        assert code == 503 and answer["error"]["type"] == "vault_unavailable", raw
        assert answer["error"]["message"].startswith("Vault did not answer within 0.4 s (c.SecureLLM.vault_timeout)")
        assert len(provider.requests) == n, "nothing may reach the provider without a key from Vault"
        log = server_log()
        assert "no answer within 0.4 s (c.SecureLLM.vault_timeout)" in log
        for text, where in ((raw, "the answer"), (log, "the server log")):
            assert_no_secret(text, vault_provider_key, where)
