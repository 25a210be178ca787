"""Vault over TLS against a real OpenBao with an HTTPS listener whose certificates a run-time CA made.

Each broken case fails closed (no secret, a VaultUnavailable) with a message that names the check that
failed: an unknown CA, an expired certificate, a host name mismatch, or a missing client certificate.
"""
import secrets

import pytest

from jupyter_securellm.server.app import ConfigError, SecureLLM
from jupyter_securellm.testing.openbao import OpenBao
from jupyter_securellm.testing.providers import TestCA
from jupyter_securellm.vault import VaultClient, VaultSettings, VaultTLSError, VaultUnavailable


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("vault-ca"))


def _serve(directory, **kw) -> OpenBao:
    bao = OpenBao(directory, **kw)
    bao.start()
    bao.enable_kv("secret")
    return bao


def _token_for(bao, tmp_path, path):
    """A non-root token that may read ``path``, in a 0600 file (what c.SecureLLM.vault_token_path names)."""
    bao.read_policy(f"read-{path.replace('/', '-')}", [path])
    tok = tmp_path / "token"
    tok.write_text(bao.create_token([f"read-{path.replace('/', '-')}"], ttl="1h")["client_token"])
    tok.chmod(0o600)
    return str(tok)


@pytest.fixture(scope="module")
def bao_tls(ca, tmp_path_factory):
    """HTTPS OpenBao; its certificate names 127.0.0.1 only (so https://localhost is a wrong host name)."""
    cert = ca.issue("vault-server", hosts=("127.0.0.1",))
    bao = _serve(tmp_path_factory.mktemp("bao-tls"), tls_files=cert, ca_cert=ca.ca_cert)
    yield bao
    bao.close()


@pytest.fixture
def secret(bao_tls, tmp_path):
    value = "tls-" + secrets.token_urlsafe(16)
    path = "llm/tls-" + secrets.token_hex(4)
    bao_tls.write_secret(path, {"api_key": value})
    return path, value, _token_for(bao_tls, tmp_path, path)


def _fails_with(settings: VaultSettings, path: str, value: str, needle: str) -> str:
    client = VaultClient(settings)
    with pytest.raises(VaultUnavailable) as ei:
        client.read_secret(path, "api_key")
    msg = str(ei.value)
    assert needle in msg, msg
    assert value not in msg and value not in repr(ei.value)
    assert client.status()["reachable"] is False  # the health probe verifies the same way
    return msg


def test_right_ca_reads_a_secret_over_https(bao_tls, secret):
    path, value, tok = secret
    assert bao_tls.url.startswith("https://127.0.0.1:")
    client = VaultClient(VaultSettings(url=bao_tls.url, token_path=tok, ca_cert=bao_tls.ca_cert))
    assert client.read_secret(path, "api_key") == value
    assert client.status()["reachable"] is True


def test_traits_reach_the_client(bao_tls, secret):
    """c.SecureLLM.vault_ca_cert is what VaultSettings and hvac get: a read through the configured app works."""
    path, value, tok = secret
    app = SecureLLM(vault_url=bao_tls.url, vault_token_path=tok, vault_ca_cert=bao_tls.ca_cert)
    app.check_config()
    settings = app.vault_settings()
    assert settings.ca_cert == bao_tls.ca_cert and settings.client_cert is None
    assert VaultClient(settings).read_secret(path, "api_key") == value


def test_wrong_ca_fails_closed_naming_the_unknown_ca(bao_tls, secret, tmp_path):
    path, value, tok = secret
    other = TestCA(tmp_path / "other-ca")
    msg = _fails_with(VaultSettings(url=bao_tls.url, token_path=tok, ca_cert=other.ca_cert), path, value,
                      "TLS failed (unknown CA)")
    assert "vault_ca_cert" in msg
    # and with no CA configured at all (system trust store only): the same verdict
    _fails_with(VaultSettings(url=bao_tls.url, token_path=tok), path, value, "TLS failed (unknown CA)")


def test_wrong_host_name_fails_closed_naming_the_mismatch(bao_tls, secret):
    path, value, tok = secret
    url = bao_tls.url.replace("127.0.0.1", "localhost")
    _fails_with(VaultSettings(url=url, token_path=tok, ca_cert=bao_tls.ca_cert), path, value,
                "TLS failed (host name mismatch)")


@pytest.mark.parametrize("case", ["no CA", "wrong host name"])
def test_a_tls_failure_at_login_says_what_happened_and_what_to_do(bao_tls, secret, case):
    """The server logs in at start-up, before any read: that message named "the request" it was reading."""
    path, value, tok = secret
    if case == "no CA":
        url, kind, todo = bao_tls.url, "unknown CA", "set c.SecureLLM.vault_ca_cert to the CA that signed it"
        settings = VaultSettings(url=url, token_path=tok)
    else:
        url, kind = bao_tls.url.replace("127.0.0.1", "localhost"), "host name mismatch"
        todo = "does not name the host in vault_url; use the name the certificate was issued for"
        settings = VaultSettings(url=url, token_path=tok, ca_cert=bao_tls.ca_cert)
    client = VaultClient(settings)
    with pytest.raises(VaultTLSError) as ei:
        client.login()
    msg = str(ei.value)
    assert msg.startswith(f"Vault at {url}: TLS failed ({kind}) while logging in with token auth: "), msg
    assert todo in msg and "the request" not in msg, msg
    assert ei.value.kind == kind
    token = open(tok).read().strip()
    assert token not in msg and token not in repr(ei.value) and value not in msg


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # the harness's own setup calls
def test_expired_server_certificate_fails_closed_naming_it(ca, tmp_path):
    expired = ca.issue("vault-expired", hosts=("127.0.0.1",), expired=True)
    # the harness itself must not verify (the certificate is broken on purpose); the client under test does
    bao = _serve(tmp_path / "bao", tls_files=expired, ca_cert=ca.ca_cert, admin_verify=False)
    try:
        value = "exp-" + secrets.token_urlsafe(16)
        bao.write_secret("llm/expired", {"api_key": value})
        tok = _token_for(bao, tmp_path, "llm/expired")
        msg = _fails_with(VaultSettings(url=bao.url, token_path=tok, ca_cert=ca.ca_cert), "llm/expired", value,
                          "TLS failed (expired certificate)")
        assert "renew" in msg
    finally:
        bao.close()


@pytest.fixture(scope="module")
def bao_mtls(ca, tmp_path_factory):
    """HTTPS OpenBao that requires a client certificate signed by ``ca``."""
    d = tmp_path_factory.mktemp("bao-mtls")
    bao = _serve(d, tls_files=ca.issue("vault-mtls", hosts=("127.0.0.1",)), ca_cert=ca.ca_cert,
                 client_ca=ca.ca_cert, admin_cert=ca.issue("bao-admin", client=True))
    yield bao
    bao.close()


def test_mutual_tls_with_a_client_certificate(bao_mtls, ca, tmp_path):
    value = "mtls-" + secrets.token_urlsafe(16)
    bao_mtls.write_secret("llm/mtls", {"api_key": value})
    tok = _token_for(bao_mtls, tmp_path, "llm/mtls")
    cert, key = ca.issue("broker-client", client=True)
    app = SecureLLM(vault_url=bao_mtls.url, vault_token_path=tok, vault_ca_cert=ca.ca_cert,
                    vault_client_cert=cert, vault_client_key=key)
    app.check_config()
    client = VaultClient(app.vault_settings())
    assert client.read_secret("llm/mtls", "api_key") == value
    assert client.status()["reachable"] is True


def test_mutual_tls_without_a_client_certificate_fails_clearly(bao_mtls, ca, tmp_path):
    value = "mtls-" + secrets.token_urlsafe(16)
    bao_mtls.write_secret("llm/mtls-none", {"api_key": value})
    tok = _token_for(bao_mtls, tmp_path, "llm/mtls-none")
    msg = _fails_with(VaultSettings(url=bao_mtls.url, token_path=tok, ca_cert=ca.ca_cert), "llm/mtls-none",
                      value, "TLS failed (client certificate rejected)")
    assert "vault_client_cert" in msg
    # a client certificate from a CA Vault does not trust: OpenBao (Go) either sends an "unknown ca" alert or
    # (about 3 times in 4, measured over 40 tries) just hangs up mid-handshake; both messages say so and name
    # vault_client_cert as the thing to fix
    stranger = TestCA(tmp_path / "stranger").issue("stranger", client=True)
    msg = _fails_with(VaultSettings(url=bao_mtls.url, token_path=tok, ca_cert=ca.ca_cert, client_cert=stranger[0],
                                    client_key=stranger[1]), "llm/mtls-none", value, "TLS failed (")
    assert ("(client certificate rejected)" in msg or "(handshake closed by Vault)" in msg), msg
    assert "vault_client_cert" in msg


# -- the traits' own checks (no server needed) ---------------------------------------------------
def test_tls_trait_paths_must_exist(tmp_path):
    for name in ("vault_ca_cert", "vault_client_cert", "vault_client_key"):
        with pytest.raises(ConfigError, match=f"c.SecureLLM.{name}: .* is not a file"):
            SecureLLM(**{name: str(tmp_path / "missing.pem")})


def test_client_cert_and_key_go_together(ca):
    cert, key = ca.issue("half", client=True)
    with pytest.raises(ConfigError, match="c.SecureLLM.vault_client_key: mutual TLS needs both"):
        SecureLLM(vault_client_cert=cert).check_config()
    with pytest.raises(ConfigError, match="c.SecureLLM.vault_client_cert: mutual TLS needs both"):
        SecureLLM(vault_client_key=key).check_config()
    SecureLLM(vault_client_cert=cert, vault_client_key=key, vault_ca_cert=ca.ca_cert).check_config()
