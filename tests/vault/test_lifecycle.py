"""Token lifecycle and outages: renewal, re-login, revoked tokens, Vault killed/restarted, sealed Vault.

These use private OpenBao servers (``openbao_factory``) because they stop, kill or seal them.
"""
import logging
import secrets
import time
import traceback

import pytest

from jupyter_securellm.vault import (
    VaultAuthError, VaultClient, VaultError, VaultSealed, VaultSettings, VaultUnavailable,
)


@pytest.fixture
def bao(openbao_factory):
    server = openbao_factory()
    value = "key-" + secrets.token_urlsafe(24)
    server.write_secret("llm/openai", {"api_key": value})
    server.read_policy("reader", ["llm/*"])
    server.value = value
    return server


def approle_client(bao, write_file, **kw):
    params = {k: kw.pop(k) for k in ("token_ttl", "token_max_ttl") if k in kw}
    role_id = bao.create_approle("broker", ["reader"], **params)
    sid = write_file("sid", bao.approle_secret_id("broker"))
    return VaultClient(VaultSettings(url=bao.url, auth_method="approle", approle_role_id=role_id,
                                     approle_secret_id_path=sid, **kw))


def test_renews_token_before_expiry(bao, write_file):
    vc = approle_client(bao, write_file, token_ttl="6s", token_max_ttl="120s", secret_cache_ttl=0)
    assert vc.read_secret("llm/openai", "api_key") == bao.value
    accessor = vc._tok.accessor
    time.sleep(4.3)                       # < 1/3 of the 6 s TTL left
    assert vc.token_ttl() <= 2
    vc.renew_if_needed()
    assert vc.stats["renewals"] == 1 and vc.stats["logins"] == 1
    assert vc._tok.accessor == accessor   # same token, renewed
    assert vc.token_ttl() >= 4
    assert vc.read_secret("llm/openai", "api_key") == bao.value


def test_logs_in_again_when_token_hits_max_ttl(bao, write_file):
    vc = approle_client(bao, write_file, token_ttl="3s", token_max_ttl="3s", secret_cache_ttl=0)
    vc.read_secret("llm/openai", "api_key")
    time.sleep(2.2)
    assert vc.read_secret("llm/openai", "api_key") == bao.value
    assert vc.stats["logins"] == 2        # renewal could not extend past max TTL: fresh login


def test_background_renewal_keeps_an_idle_client_alive(bao, write_file):
    vc = approle_client(bao, write_file, token_ttl="4s", token_max_ttl="60s", secret_cache_ttl=0)
    vc.read_secret("llm/openai", "api_key")
    vc.start_background_renewal(interval=0.25)
    try:
        time.sleep(5)                     # longer than the token's TTL
        assert vc.stats["renewals"] >= 1
        assert vc.read_secret("llm/openai", "api_key") == bao.value
        assert vc.stats["logins"] == 1
    finally:
        vc.close()


def test_relogin_after_token_revocation(bao, write_file):
    vc = approle_client(bao, write_file, secret_cache_ttl=0)
    vc.read_secret("llm/openai", "api_key")
    bao.revoke_accessor(vc._tok.accessor)
    assert vc.read_secret("llm/openai", "api_key") == bao.value
    assert vc.stats["logins"] == 2


def test_revoked_static_token_is_an_auth_error_until_the_file_is_updated(bao, write_file):
    first = bao.create_token(["reader"], ttl="1h")["client_token"]
    tok = write_file("tok", first)
    vc = VaultClient(VaultSettings(url=bao.url, token_path=tok, secret_cache_ttl=0))
    vc.read_secret("llm/openai", "api_key")
    bao.revoke_token(first)
    with pytest.raises(VaultAuthError) as ei:
        vc.read_secret("llm/openai", "api_key")
    assert tok in str(ei.value) and first not in str(ei.value)
    write_file("tok", bao.create_token(["reader"], ttl="1h")["client_token"])
    assert vc.read_secret("llm/openai", "api_key") == bao.value


def test_vault_killed_and_restarted_fails_closed_then_recovers(bao, write_file):
    vc = approle_client(bao, write_file, secret_cache_ttl=2.0, timeout=2.0)
    assert vc.read_secret("llm/openai", "api_key") == bao.value
    bao.kill()                                            # SIGKILL: a crash, not a shutdown
    assert vc.read_secret("llm/openai", "api_key") == bao.value   # cache still valid
    time.sleep(2.1)
    with pytest.raises(VaultUnavailable) as ei:          # cache expired, Vault down: fail closed
        vc.read_secret("llm/openai", "api_key")
    assert bao.url in str(ei.value) and "unreachable" in str(ei.value)
    st = vc.status()
    assert st["reachable"] is False and st["sealed"] is None
    bao.start()                                           # same port, state kept, unsealed
    assert vc.read_secret("llm/openai", "api_key") == bao.value
    assert vc.status()["reachable"] is True


def test_sealed_vault_is_vaultsealed_then_recovers(bao, write_file):
    vc = approle_client(bao, write_file, secret_cache_ttl=0)
    vc.read_secret("llm/openai", "api_key")
    bao.seal()
    with pytest.raises(VaultSealed, match="sealed; an operator must unseal"):
        vc.read_secret("llm/openai", "api_key")
    assert isinstance(VaultSealed("x"), VaultUnavailable)
    assert vc.status()["sealed"] is True and vc.status()["reachable"] is True
    bao.unseal()
    assert vc.read_secret("llm/openai", "api_key") == bao.value


def test_no_token_or_secret_in_any_error_or_log(bao, write_file, caplog):
    """Drive every error path; no exception text, traceback or log record may hold a credential."""
    caplog.set_level(logging.DEBUG)  # all loggers: ours, hvac, urllib3, requests
    token = bao.create_token(["reader"], ttl="1h")["client_token"]
    role_id = bao.create_approle("broker", ["reader"])
    secret_id = bao.approle_secret_id("broker")
    wrapped = bao.approle_secret_id("broker", wrap_ttl="60s")
    issuer = bao.enable_jwt()
    bao.create_jwt_role("j", ["reader"])
    jwt = issuer.mint("alice")
    forbidden = {token, secret_id, wrapped, jwt, bao.value, bao.root_token, bao.unseal_key}

    errors: list[BaseException] = []

    def attempt(vc, path="llm/openai", key="api_key"):
        try:
            vc.read_secret(path, key)
        except VaultError as e:
            errors.append(e)

    tok_vc = VaultClient(VaultSettings(url=bao.url, token_path=write_file("tok", token), secret_cache_ttl=0))
    attempt(tok_vc)                       # success: the value is now known to the client
    attempt(tok_vc, "llm/missing")        # not found
    attempt(tok_vc, "other/path")         # permission denied
    attempt(tok_vc, key="nope")
    wr_vc = VaultClient(VaultSettings(url=bao.url, auth_method="approle", approle_role_id=role_id,
                                      approle_secret_id_path=write_file("wsid", wrapped), secret_cache_ttl=0))
    attempt(wr_vc)
    attempt(VaultClient(VaultSettings(url=bao.url, auth_method="approle", approle_role_id=role_id,
                                      approle_secret_id_path=write_file("wsid2", wrapped))))  # spent
    attempt(VaultClient(VaultSettings(url=bao.url, auth_method="jwt", role="nope",
                                      jwt_path=write_file("jwt", jwt))))                   # bad role
    attempt(VaultClient(VaultSettings(url=bao.url, auth_method="approle", approle_role_id=role_id,
                                      approle_secret_id_path=write_file("sid", secret_id[:-4] + "0000"))))
    bao.revoke_token(token)
    attempt(tok_vc)                       # revoked static token
    bao.seal()
    attempt(wr_vc)                        # sealed
    bao.unseal()
    bao.kill()
    attempt(wr_vc)                        # down
    assert len(errors) >= 9
    texts = [str(e) for e in errors]
    texts += ["".join(traceback.format_exception(e)) for e in errors]
    texts += [r.getMessage() for r in caplog.records]
    texts += [caplog.text]
    leaked = [t for t in texts for f in forbidden if f and f in t]
    assert not leaked, "a credential appeared in an error or a log record"
    # and the messages are actionable: they name Vault
    assert all("Vault" in str(e) for e in errors)
