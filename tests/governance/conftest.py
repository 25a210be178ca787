"""Governance tests: pure library code (policy, budget, audit, alerts) and its wiring into a real server.

The fixtures they use (openbao, postgres, postgres_url, jp_fetch, jp_serverapp) are the shared plugins the
root conftest registers (jupyter_securellm/testing/); the server modules share the governed broker's
fixtures below (each module gives its Rego as a `policy` fixture).
"""
import pytest

from jupyter_securellm.detect import fake_secret
from jupyter_securellm.testing.provider import FakeProvider


@pytest.fixture
def provider(openbao):
    """The stand-in provider with a key generated for this test and kept in Vault at llm/gov (the model
    `gpt` of `governed_config`); overrides the shared `provider` for this folder."""
    key = fake_secret("openai-api-key")
    openbao.write_secret("llm/gov", {"api_key": key})
    with FakeProvider(key) as p:
        yield p


@pytest.fixture
def gov_dir(tmp_path, policy):
    """A folder with the module's `policy` fixture (Rego source) as policies/p.rego, the SQLite ledger and the audit log."""
    d = tmp_path / "gov"
    (d / "policies").mkdir(parents=True)
    (d / "policies" / "p.rego").write_text(policy)
    return d


@pytest.fixture
def governed_server_config(openbao, provider, gov_dir, tmp_path) -> dict:
    """A jp_server_config (extension on, authentication required) of a governed broker: model `gpt` on
    `provider`, the module's policy, a SQLite ledger and an audit log in `gov_dir`. A module adds its own
    traits (budgets, ...) to ["SecureLLM"] in its jp_server_config."""
    tok = tmp_path / "vault-token"
    tok.write_text(openbao.root_token)
    tok.chmod(0o600)
    cfg = {
        "vault_url": openbao.url, "vault_auth_method": "token", "vault_token_path": str(tok),
        "models": {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/gov", "secret_key": "api_key",
                           "api_base": provider.url + "/v1", "allow_http": True}},
        "allowed_hosts": [f"127.0.0.1:{provider.port}"],
        "preload_litellm": False,
        "policy_paths": [str(gov_dir / "policies")],
        "database_url": f"sqlite:///{gov_dir}/budget.sqlite",
        "audit_log_path": str(gov_dir / "audit.jsonl"),
    }
    return {"ServerApp": {"jpserver_extensions": {"jupyter_securellm": True}, "allow_unauthenticated_access": False},
            "SecureLLM": cfg}
