"""Server-config checks against config files: one deployment that passes each check, one that fails.

The files are real `jupyter_server_config.py` files loaded by the doctor as the server loads them;
validity is decided by the server's own `SecureLLM` validation.
"""
from __future__ import annotations

import contextlib
import io
import json
import os

import pytest

from jupyter_securellm.cli import main
from jupyter_securellm.detect import fake_secret

GOOD = {
    "vault_url": "https://vault.example.org:8200",
    "models": {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai", "secret_key": "api_key"}},
    "allowed_hosts": ["api.openai.com"],
}


def approle(secret_id) -> dict:
    return {"vault_auth_method": "approle", "vault_approle_role_id": "role-id-demo",
            "vault_approle_secret_id_path": str(secret_id)}


def write(tmp_path, values: dict, name="jupyter_server_config.py", extra="") -> str:
    lines = ["c = get_config()  # noqa"] + [f"c.SecureLLM.{k} = {v!r}" for k, v in values.items()]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n" + extra)
    return str(path)


def run_cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["doctor", *args])
    return rc, out.getvalue(), err.getvalue()


def doctor(*args):
    """The CLI in this process (one import of the server code for the whole file)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["doctor", "--only", "config", "--format", "json", *args])
    assert rc in (0, 1), err.getvalue()
    return rc, {c["check"]: c for c in json.loads(out.getvalue())["checks"]}


@pytest.fixture
def secret_id(tmp_path):
    p = tmp_path / "secret-id"
    p.write_text("s-" + os.urandom(8).hex())
    p.chmod(0o600)
    return p


def test_a_safe_config_passes(tmp_path, secret_id):
    audit = tmp_path / "audit.jsonl"
    audit.touch(mode=0o600)
    cfg = write(tmp_path, {**GOOD, **approle(secret_id), "audit_log_path": str(audit)})
    rc, checks = doctor("--config", cfg)
    statuses = {k: v["status"] for k, v in checks.items()}
    assert rc == 0, statuses
    for name in ("valid", "http-models", "model-tls", "allowed-hosts", "save-hook", "dlp", "hardening", "credential-files"):
        assert statuses[f"config.{name}"] == "pass", (name, checks[f"config.{name}"])
    # audit: on, private; still a warning in local mode (kernels run as the server's user)
    assert statuses["config.audit"] == "warn"


def test_world_readable_secret_id_fails(tmp_path, secret_id):
    secret_id.chmod(0o644)
    rc, checks = doctor("--config", write(tmp_path, {**GOOD, **approle(secret_id)}))
    c = checks["config.credential-files"]
    assert rc == 1 and c["status"] == "fail"
    assert any(str(secret_id) in d and "mode 644" in d for d in c["details"])
    assert secret_id.read_text() not in json.dumps(checks), "the file's content is never printed"


def test_plain_http_remote_model_fails_and_loopback_passes(tmp_path):
    remote = {**GOOD, "models": {"m": {"model": "openai/x", "secret_path": "llm/m", "secret_key": "k",
                                       "api_base": "http://models.internal:8000/v1", "allow_http": True}},
              "allowed_hosts": ["models.internal:8000"]}
    rc, checks = doctor("--config", write(tmp_path, remote))
    assert rc == 1 and checks["config.http-models"]["status"] == "fail"
    assert checks["config.http-models"]["details"] == ["m: http://models.internal:8000/v1"]
    assert checks["config.valid"]["status"] == "pass", "valid for the server (allow_http), unsafe for the doctor"
    local = {**remote, "models": {"m": {**remote["models"]["m"], "api_base": "http://127.0.0.1:8000/v1"}},
             "allowed_hosts": ["127.0.0.1:8000"]}
    rc, checks = doctor("--config", write(tmp_path, local, name="local.py"))
    assert checks["config.http-models"]["status"] == "pass"


def test_ssl_verify_false_fails_and_a_model_ca_passes(tmp_path):
    from jupyter_securellm.testing.providers import TestCA

    ca = TestCA(tmp_path / "ca")
    model = {"model": "openai/llama3", "secret_path": "llm/m", "secret_key": "k",
             "api_base": "https://models.internal:8443/v1"}
    base = {**GOOD, "allowed_hosts": ["models.internal:8443"]}
    rc, checks = doctor("--config", write(tmp_path, {**base, "models": {"m": {**model, "ssl_verify": False}}}))
    c = checks["config.model-tls"]
    assert rc == 1 and c["status"] == "fail", c
    assert c["details"] == ["m: https://models.internal:8443/v1"] and "ca_bundle" in c["fix"]
    assert checks["config.valid"]["status"] == "pass", "valid for the server (an explicit choice), unsafe for the doctor"
    rc, checks = doctor("--config", write(tmp_path, {**base, "models": {"m": {**model, "ca_bundle": ca.ca_cert}}},
                                          name="ca.py"))
    c = checks["config.model-tls"]
    assert c["status"] == "pass" and c["details"] == [f"m: CA {ca.ca_cert}"], c


def test_invalid_value_fails_with_the_servers_own_message(tmp_path):
    bad = {**GOOD, "models": {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai"}}}
    rc, checks = doctor("--config", write(tmp_path, bad))
    c = checks["config.valid"]
    assert rc == 1 and c["status"] == "fail"
    assert "c.SecureLLM.models['gpt']" in c["summary"] and "'secret_key' is required" in c["summary"]


def test_a_wrong_trait_type_fails(tmp_path):
    rc, checks = doctor("--config", write(tmp_path, {**GOOD, "harden_process": "yes"}))
    assert rc == 1 and checks["config.valid"]["status"] == "fail" and "harden_process" in checks["config.valid"]["summary"]


def test_a_misspelt_setting_fails(tmp_path):
    rc, checks = doctor("--config", write(tmp_path, {**GOOD, "save_hook_mod": "block"}))
    assert rc == 1 and "c.SecureLLM.save_hook_mod" in checks["config.valid"]["summary"]


def test_unsafe_values_each_fail_or_warn(tmp_path):
    unsafe = {**GOOD, "vault_url": "http://vault.internal:8200", "save_hook_mode": "warn", "harden_process": False,
              "allowed_hosts": ["api.openai.com", "api.anthropic.com"]}
    rc, checks = doctor("--config", write(tmp_path, unsafe))
    s = {k: v["status"] for k, v in checks.items()}
    assert rc == 1
    assert s["config.vault-tls"] == "fail"
    assert s["config.save-hook"] == "warn"
    assert s["config.hardening"] == "fail"
    assert s["config.allowed-hosts"] == "warn" and checks["config.allowed-hosts"]["details"] == ["api.anthropic.com"]
    assert s["config.audit"] == "warn"


def test_everything_allowed_fails(tmp_path):
    rc, checks = doctor("--config", write(tmp_path, {**GOOD, "allowed_hosts": ["*"]}))
    assert checks["config.allowed-hosts"]["status"] == "fail"


def test_audit_log_writable_by_others_fails(tmp_path):
    audit = tmp_path / "audit.jsonl"
    audit.touch()
    audit.chmod(0o666)
    rc, checks = doctor("--config", write(tmp_path, {**GOOD, "audit_log_path": str(audit)}))
    c = checks["config.audit"]
    assert rc == 1 and c["status"] == "fail" and any("world-writable" in d for d in c["details"])


def test_loopback_http_vault_warns_and_says_if_it_answers(tmp_path):
    from jupyter_securellm.demo import free_port

    port = free_port()
    rc, checks = doctor("--config", write(tmp_path, {**GOOD, "vault_url": f"http://127.0.0.1:{port}"}))
    c = checks["config.vault-tls"]
    assert c["status"] == "warn" and "not reachable" in c["summary"]


def test_a_config_that_does_not_load_exits_2(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("c = get_config()\nc.SecureLLM.models = {\n")
    rc, _, err = run_cli("--only", "config", "--config", str(path))
    assert rc == 2 and "does not load (SyntaxError)" in err
    rc, _, err = run_cli("--only", "config", "--config", str(tmp_path / "nope.py"))
    assert rc == 2 and "no such config file" in err


def test_the_report_never_prints_a_secret_from_the_config(tmp_path):
    key = fake_secret("openai-api-key")  # pasted into the config by mistake: the doctor must not echo it
    cfg = write(tmp_path, {**GOOD, "vault_auth_method": "approle", "vault_approle_role_id": key,
                            "redaction_placeholder": "{bad}"})
    for fmt in ("text", "json"):
        rc, out, err = run_cli("--only", "config", "--config", cfg, "--format", fmt)
        assert rc == 1
        assert key not in out and key not in err



def test_vault_over_https_with_an_untrusted_certificate_fails_and_trusted_passes(tmp_path):
    """A real OpenBao serving HTTPS with a CA made at run time: unknown to the server's trust store
    (hvac verifies with requests: $REQUESTS_CA_BUNDLE, else certifi), then trusted through it."""
    from jupyter_securellm.testing.openbao import OpenBao

    with OpenBao(tmp_path / "bao", tls=True) as bao:
        cfg = write(tmp_path, {**GOOD, "vault_url": bao.url})
        saved = os.environ.pop("REQUESTS_CA_BUNDLE", None)
        try:
            rc, checks = doctor("--config", cfg)
            c = checks["config.vault-tls"]
            assert rc == 1 and c["status"] == "fail" and "certificate not trusted" in c["summary"]
            os.environ["REQUESTS_CA_BUNDLE"] = bao.ca_cert
            rc, checks = doctor("--config", cfg)
            c = checks["config.vault-tls"]
            assert c["status"] == "pass" and "reachable over https with certificate verification" in c["summary"]
        finally:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
            if saved is not None:
                os.environ["REQUESTS_CA_BUNDLE"] = saved
