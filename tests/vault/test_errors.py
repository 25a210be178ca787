"""Error paths a healthy OpenBao cannot produce: a Vault that accepts but never answers, and
Vault error texts that quote credentials (scrubbing)."""
import socket
import time

import hvac.exceptions
import pytest

from jupyter_securellm.vault import VaultClient, VaultSettings, VaultUnavailable


def test_hanging_vault_times_out_as_unavailable(tmp_path):
    # A real listening socket that never accepts: connect succeeds (backlog), no answer ever comes.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        tok = tmp_path / "t"
        tok.write_text("s." + "x" * 24)
        vc = VaultClient(VaultSettings(url=url, token_path=str(tok), timeout=0.5))
        t = time.monotonic()
        with pytest.raises(VaultUnavailable, match="timed out") as ei:
            vc.read_secret("llm/openai", "api_key")
        assert time.monotonic() - t < 5
        assert "x" * 24 not in str(ei.value)
        assert vc.status()["sealed"] is None


def test_vault_error_text_is_scrubbed_of_known_and_token_shaped_values(tmp_path):
    tok = tmp_path / "t"
    token = "s." + "A1b2C3d4" * 3
    tok.write_text(token)
    vc = VaultClient(VaultSettings(url="http://127.0.0.1:9", token_path=str(tok)))
    vc._sensitive.add(token)
    other = "hvs." + "Z9y8X7w6" * 3
    exc = hvac.exceptions.InvalidRequest(errors=[f"bad token {token}", f"also {other} here"])
    err = vc._mapped_error(exc, "llm/openai")
    assert token not in str(err) and other not in str(err)
    assert "[REDACTED]" in str(err) and "llm/openai" in str(err)


def test_tls_vault_needs_the_right_ca(openbao_factory, write_file):
    bao = openbao_factory(tls=True)
    assert bao.url.startswith("https://")
    bao.write_secret("llm/openai", {"api_key": "over-tls"})
    bao.read_policy("reader", ["llm/*"])
    tok = write_file("t", bao.create_token(["reader"], ttl="1h")["client_token"])
    good = VaultClient(VaultSettings(url=bao.url, token_path=tok, ca_cert=bao.ca_cert))
    assert good.read_secret("llm/openai", "api_key") == "over-tls"
    assert good.status()["reachable"] is True
    untrusted = VaultClient(VaultSettings(url=bao.url, token_path=tok))   # system CAs only
    with pytest.raises(VaultUnavailable, match=r"TLS failed \(unknown CA\)"):
        untrusted.read_secret("llm/openai", "api_key")
