"""Vault-layer tests run against a real OpenBao server and the stand-in provider."""
import os
import secrets

import pytest

# Import the fixtures instead of `pytest_plugins = [...]`: pytest refuses pytest_plugins in a
# conftest below the rootdir once the whole suite runs (`make test`).
from jupyter_securellm.testing.pytest_plugin import (  # noqa: E402,F401
    openbao, openbao_factory, provider, provider_key, unique_path,
)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


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
