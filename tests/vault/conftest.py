"""Vault-layer tests run against a real OpenBao server and the stand-in provider (`openbao`,
`openbao_factory`, `provider`, `unique_path`: the `jupyter_securellm.testing.pytest_plugin` fixtures)."""
import secrets

import pytest


@pytest.fixture
def kv(openbao, unique_path):
    """A per-test KV tree: shared key at <p>/openai, alice's own at <p>/alice/openai; a reader policy."""
    shared, alice = "shared-" + secrets.token_urlsafe(16), "alice-" + secrets.token_urlsafe(16)
    openbao.write_secret(f"{unique_path}/openai", {"api_key": shared})
    openbao.write_secret(f"{unique_path}/alice/openai", {"api_key": alice})
    policy = openbao.read_policy(f"read-{unique_path}", [f"{unique_path}/*", f"{unique_path}/+/*"])
    return {"prefix": unique_path, "shared": shared, "alice": alice, "policy": policy}


@pytest.fixture
def write_file(tmp_path):
    def write(name, text):
        p = tmp_path / name
        p.write_text(text)
        p.chmod(0o600)
        return str(p)

    return write
