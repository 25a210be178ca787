"""KV v2 reads: the {user} rule with shared fallback, cache TTL, rotation, redactor hook, concurrency."""
import threading
import time

import pytest

from jupyter_securellm.vault import (
    SecretNotFound, VaultClient, VaultConfigError, VaultPermissionDenied, VaultSettings,
    candidate_paths, sanitize_user,
)


@pytest.fixture
def client(openbao, kv, write_file):
    made = []

    def make(**kw):
        token = openbao.create_token([kv["policy"]], ttl="1h")["client_token"]
        vc = VaultClient(VaultSettings(url=openbao.url, token_path=write_file(f"tok{len(made)}", token), **kw))
        made.append(vc)
        return vc

    yield make
    for vc in made:
        vc.close()


def test_user_rule_per_user_then_shared(client, kv):
    vc = client()
    p = f"{kv['prefix']}/{{user}}/openai"
    assert vc.read_secret(p, "api_key", user="alice") == kv["alice"]
    assert vc.read_secret(p, "api_key", user="bob") == kv["shared"]     # no bob secret: shared
    assert vc.read_secret(p, "api_key") == kv["shared"]                 # no user: shared only
    assert vc.read_secret(p, "api_key", user="") == kv["shared"]
    assert vc.stats["fallbacks"] == 1


def test_user_rule_explicit_fallback_path(openbao, client, kv):
    openbao.write_secret(f"{kv['prefix']}/team/openai", {"api_key": "team-key"})
    vc = client()
    got = vc.read_secret(f"{kv['prefix']}/{{user}}/openai", "api_key", user="carol",
                         fallback_path=f"{kv['prefix']}/team/openai")
    assert got == "team-key"


def test_user_name_cannot_escape_its_segment(client, kv):
    vc = client()
    # "../alice" must not reach another path: it becomes the (missing) user "___alice" -> shared.
    assert sanitize_user("../x/y") == "___x_y"
    assert candidate_paths("a/{user}/k", "../x") == ["a/___x/k", "a/k"]
    assert candidate_paths("a/openai-{user}", "bob") == ["a/openai-bob"]
    with pytest.raises(VaultConfigError):
        candidate_paths("a/{user}/k/{other}", "bob")
    with pytest.raises(VaultConfigError):
        candidate_paths("a/../b", None)
    assert vc.read_secret(f"{kv['prefix']}/{{user}}/openai", "api_key", user="../alice") == kv["shared"]


def test_missing_secret_and_missing_key_name_the_paths(client, kv):
    vc = client()
    with pytest.raises(SecretNotFound) as ei:
        vc.read_secret(f"{kv['prefix']}/{{user}}/nothing", "api_key", user="bob")
    msg = str(ei.value)
    assert f"secret/{kv['prefix']}/bob/nothing" in msg and f"secret/{kv['prefix']}/nothing" in msg
    with pytest.raises(SecretNotFound, match="'other_key'"):
        vc.read_secret(f"{kv['prefix']}/openai", "other_key")


def test_permission_denied_does_not_fall_back(openbao, kv, write_file):
    # A policy that may read only the shared path: alice's own path is denied -> error, not fallback.
    pol = openbao.read_policy(f"shared-only-{kv['prefix']}", [f"{kv['prefix']}/openai"])
    token = openbao.create_token([pol], ttl="1h")["client_token"]
    vc = VaultClient(VaultSettings(url=openbao.url, token_path=write_file("t", token)))
    with pytest.raises(VaultPermissionDenied) as ei:
        vc.read_secret(f"{kv['prefix']}/{{user}}/openai", "api_key", user="alice")
    assert f"{kv['prefix']}/alice/openai" in str(ei.value) and "policy" in str(ei.value)
    assert vc.stats["logins"] == 2  # it logged in again once before giving up


def test_cache_ttl_serves_cached_then_rereads(openbao, client, kv):
    vc = client(secret_cache_ttl=1.0)
    path = f"{kv['prefix']}/openai"
    assert vc.read_secret(path, "api_key") == kv["shared"]
    openbao.write_secret(path, {"api_key": "v2"})
    assert vc.read_secret(path, "api_key") == kv["shared"]   # still cached
    assert vc.stats["reads"] == 1 and vc.stats["cache_hits"] == 1
    time.sleep(1.1)
    assert vc.read_secret(path, "api_key") == "v2"
    assert vc.stats["reads"] == 2


def test_rotation_invalidate_then_new_value(openbao, client, kv):
    vc = client(secret_cache_ttl=300)
    tmpl = f"{kv['prefix']}/{{user}}/openai"
    assert vc.read_secret(tmpl, "api_key", user="alice") == kv["alice"]
    openbao.write_secret(f"{kv['prefix']}/alice/openai", {"api_key": "rotated"})
    assert vc.read_secret(tmpl, "api_key", user="alice") == kv["alice"]
    # The broker invalidates by the model's configured path (the template) after a provider 401.
    assert vc.invalidate(tmpl) == 1
    assert vc.read_secret(tmpl, "api_key", user="alice") == "rotated"
    # ...or by the concrete path.
    openbao.write_secret(f"{kv['prefix']}/alice/openai", {"api_key": "rotated-again"})
    assert vc.invalidate(f"{kv['prefix']}/alice/openai") == 1
    assert vc.read_secret(tmpl, "api_key", user="alice") == "rotated-again"


def test_on_secret_gets_every_value_and_the_token(openbao, kv, write_file):
    long_plain = "x" * 24
    openbao.write_secret(f"{kv['prefix']}/multi", {"api_key": "k-one", "org_token": "o-two", "n": 3,
                                                     "region": "eu-west-1", "blob": long_plain})
    token = openbao.create_token([kv["policy"]], ttl="1h")["client_token"]
    seen = []
    vc = VaultClient(VaultSettings(url=openbao.url, token_path=write_file("t", token)), on_secret=seen.append)
    assert vc.read_secret(f"{kv['prefix']}/multi", "api_key") == "k-one"
    assert {"k-one", "o-two", long_plain, token} <= set(seen)
    assert "eu-west-1" not in seen           # a short plain setting is not a secret to redact
    assert vc.read_secret(f"{kv['prefix']}/multi", "region") == "eu-west-1"
    assert "eu-west-1" in seen               # ...unless it is the field asked for
    n = len(seen)
    vc.read_secret(f"{kv['prefix']}/multi", "api_key")  # cache hit: nothing new to register
    assert len(seen) == n


def test_on_secret_failure_fails_closed_without_value(openbao, kv, write_file):
    token = openbao.create_token([kv["policy"]], ttl="1h")["client_token"]

    def broken(value):
        raise RuntimeError(f"cannot register {value}")

    vc = VaultClient(VaultSettings(url=openbao.url, token_path=write_file("t", token)), on_secret=broken)
    with pytest.raises(Exception) as ei:
        vc.read_secret(f"{kv['prefix']}/openai", "api_key")
    assert token not in str(ei.value) and kv["shared"] not in str(ei.value)


def test_concurrent_reads_hit_vault_once(client, kv):
    vc = client()
    results, start = [], threading.Barrier(16)

    def work():
        start.wait()
        results.append(vc.read_secret(f"{kv['prefix']}/openai", "api_key"))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [kv["shared"]] * 16
    assert vc.stats["reads"] == 1 and vc.stats["logins"] == 1
