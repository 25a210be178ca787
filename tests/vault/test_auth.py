"""Auth methods against a real OpenBao: token file, AppRole (plain and response-wrapped), JWT, namespaces."""
import hvac
import pytest

from jupyter_securellm.vault import (
    VaultAuthError, VaultClient, VaultConfigError, VaultSettings, SecretNotFound,
)


def test_token_file_auth_reads_secret_and_reports_status(openbao, kv, write_file):
    auth = openbao.create_token([kv["policy"]], ttl="1h")
    vc = VaultClient(VaultSettings(url=openbao.url, token_path=write_file("tok", auth["client_token"] + "\n")))
    try:
        assert vc.read_secret(f"{kv['prefix']}/openai", "api_key") == kv["shared"]
        st = vc.status()
        assert st["reachable"] is True and st["sealed"] is False and st["auth_method"] == "token"
        assert 3000 < st["token_ttl"] <= 3600
        assert auth["client_token"] not in repr(st)
    finally:
        vc.close()


def test_approle_plain_secret_id(openbao, kv, write_file):
    role_id = openbao.create_approle(f"r-{kv['prefix']}", [kv["policy"]])
    sid = openbao.approle_secret_id(f"r-{kv['prefix']}")
    vc = VaultClient(VaultSettings(url=openbao.url, auth_method="approle", approle_role_id=role_id,
                                   approle_secret_id_path=write_file("sid", sid)))
    try:
        assert vc.read_secret(f"{kv['prefix']}/openai", "api_key") == kv["shared"]
        assert vc.stats["logins"] == 1
    finally:
        vc.close()


def test_approle_wrapped_secret_id_is_unwrapped_once_and_kept_for_relogin(openbao, kv, write_file):
    role = f"r-{kv['prefix']}"
    role_id = openbao.create_approle(role, [kv["policy"]])
    wrapping = openbao.approle_secret_id(role, wrap_ttl="120s")
    vc = VaultClient(VaultSettings(url=openbao.url, auth_method="approle", approle_role_id=role_id,
                                   approle_secret_id_path=write_file("sid", wrapping)))
    try:
        assert vc.read_secret(f"{kv['prefix']}/openai", "api_key") == kv["shared"]
        # The wrapping token is spent: nobody else can unwrap it now.
        with pytest.raises(hvac.exceptions.VaultError):
            hvac.Client(url=openbao.url, token=wrapping).adapter.post("/v1/sys/wrapping/unwrap")
        # Revoke our token: the re-login must reuse the unwrapped secret id kept in memory.
        openbao.revoke_accessor(vc._tok.accessor)
        vc.invalidate()
        assert vc.read_secret(f"{kv['prefix']}/openai", "api_key") == kv["shared"]
        assert vc.stats["logins"] == 2
    finally:
        vc.close()


def test_approle_already_unwrapped_token_is_refused_with_advice(openbao, kv, write_file):
    role = f"r-{kv['prefix']}"
    role_id = openbao.create_approle(role, [kv["policy"]])
    wrapping = openbao.approle_secret_id(role, wrap_ttl="120s")
    hvac.Client(url=openbao.url, token=wrapping).adapter.post("/v1/sys/wrapping/unwrap")  # an attacker got it first
    vc = VaultClient(VaultSettings(url=openbao.url, auth_method="approle", approle_role_id=role_id,
                                   approle_secret_id_path=write_file("sid", wrapping)))
    with pytest.raises(VaultAuthError) as ei:
        vc.read_secret(f"{kv['prefix']}/openai", "api_key")
    msg = str(ei.value)
    assert "already" in msg and "fresh wrapped secret id" in msg and wrapping not in msg


def test_wrapping_token_not_from_approle_is_refused(openbao, kv, write_file):
    role_id = openbao.create_approle(f"r-{kv['prefix']}", [kv["policy"]])
    forged = openbao.wrap({"secret_id": "00000000-0000-0000-0000-000000000000"})
    vc = VaultClient(VaultSettings(url=openbao.url, auth_method="approle", approle_role_id=role_id,
                                   approle_secret_id_path=write_file("sid", forged)))
    with pytest.raises(VaultAuthError, match="does not wrap an AppRole secret id"):
        vc.read_secret(f"{kv['prefix']}/openai", "api_key")


def test_approle_bad_secret_id_is_an_auth_error(openbao, kv, write_file):
    role_id = openbao.create_approle(f"r-{kv['prefix']}", [kv["policy"]])
    vc = VaultClient(VaultSettings(url=openbao.url, auth_method="approle", approle_role_id=role_id,
                                   approle_secret_id_path=write_file("sid", "11111111-2222-3333-4444-555555555555")))
    with pytest.raises(VaultAuthError, match="approle") as ei:
        vc.read_secret(f"{kv['prefix']}/openai", "api_key")
    assert role_id not in str(ei.value)


def test_jwt_auth_with_runtime_rsa_key(openbao, kv, write_file):
    issuer = openbao.enable_jwt()
    openbao.create_jwt_role(f"j-{kv['prefix']}", [kv["policy"]])
    jwt_file = write_file("jwt", issuer.mint("alice"))
    vc = VaultClient(VaultSettings(url=openbao.url, auth_method="jwt", role=f"j-{kv['prefix']}",
                                   jwt_path=jwt_file))
    try:
        assert vc.read_secret(f"{kv['prefix']}/{{user}}/openai", "api_key", user="alice") == kv["alice"]
        assert vc.status()["auth_method"] == "jwt"
    finally:
        vc.close()


def test_jwt_signed_by_another_key_is_refused(openbao, kv, write_file):
    from jupyter_securellm.testing.openbao import JwtIssuer

    openbao.enable_jwt()
    openbao.create_jwt_role(f"j-{kv['prefix']}", [kv["policy"]])
    rogue = JwtIssuer(issuer=openbao.jwt_issuer.issuer).mint("alice")
    vc = VaultClient(VaultSettings(url=openbao.url, auth_method="jwt", role=f"j-{kv['prefix']}",
                                   jwt_path=write_file("jwt", rogue)))
    with pytest.raises(VaultAuthError, match="jwt") as ei:
        vc.read_secret(f"{kv['prefix']}/openai", "api_key")
    assert rogue not in str(ei.value) and rogue.split(".")[1] not in str(ei.value)


def test_namespace_header_reaches_openbao(openbao, unique_path, write_file):
    ns = "ns" + unique_path.replace("-", "")
    openbao.create_namespace(ns)
    openbao.enable_kv(namespace=ns)
    path = f"{unique_path}/openai"  # the shared server's root namespace has no such path (llm/openai it has)
    openbao.write_secret(path, {"api_key": "in-namespace-" + unique_path}, namespace=ns)
    openbao.read_policy("reader", [f"{unique_path}/*"], namespace=ns)
    token = openbao.create_token(["reader"], ttl="1h", namespace=ns)["client_token"]
    tok = write_file("tok", token)
    vc = VaultClient(VaultSettings(url=openbao.url, namespace=ns, token_path=tok))
    try:
        assert vc.read_secret(path, "api_key") == "in-namespace-" + unique_path
        assert vc.status()["namespace"] == ns
    finally:
        vc.close()
    # Without the namespace the same path does not exist (the root namespace has no such secret).
    root_ns = VaultClient(VaultSettings(url=openbao.url, token_path=write_file("root", openbao.root_token)))
    with pytest.raises(SecretNotFound):
        root_ns.read_secret(path, "api_key")


@pytest.mark.parametrize("kw,name", [
    ({"auth_method": "ldap"}, "vault_auth_method"),
    ({"auth_method": "approle"}, "vault_approle_role_id"),
    ({"auth_method": "approle", "approle_role_id": "x"}, "vault_approle_secret_id_path"),
    ({"auth_method": "jwt", "role": "r"}, "vault_jwt_path"),
    ({"auth_method": "kubernetes"}, "vault_role"),
    ({"url": "127.0.0.1:8200"}, "vault_url"),
    ({"secret_cache_ttl": -1}, "secret_cache_ttl"),
])
def test_bad_settings_name_the_setting(kw, name):
    with pytest.raises(VaultConfigError, match=name):
        VaultClient(VaultSettings(**kw))


def test_missing_token_file_names_the_setting(tmp_path):
    vc = VaultClient(VaultSettings(url="http://127.0.0.1:9", token_path=str(tmp_path / "nope")))
    with pytest.raises(VaultConfigError, match="vault_token_path"):
        vc.read_secret("a/b", "k")
