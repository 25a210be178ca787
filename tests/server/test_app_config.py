"""Start-up configuration checks: misconfiguration stops the server and names the trait."""
import subprocess
import sys
import textwrap

import pytest

from jupyter_securellm.server.app import ConfigError, SecureLLM


def make(**traits):
    app = SecureLLM(**traits)
    return app


def test_every_design_trait_exists_with_help():
    names = ["vault_url", "vault_namespace", "vault_auth_method", "vault_token_path", "vault_approle_role_id",
             "vault_approle_secret_id_path", "vault_jwt_path", "vault_role", "vault_kv_mount", "models",
             "allowed_hosts", "user_secret_paths", "secret_cache_ttl", "policy_paths", "audit_log_path",
             "database_url", "env_deny_patterns", "redaction_placeholder", "prompt_dlp_mode", "harden_process",
             "vault_ca_cert", "vault_client_cert", "vault_client_key"]
    traits = SecureLLM.class_traits(config=True)
    for n in names:
        assert n in traits, n
        assert len(traits[n].help) > 20, f"{n} has no useful help text"


@pytest.mark.parametrize("traits,needle", [
    ({"vault_url": "vault:8200"}, "c.SecureLLM.vault_url"),
    ({"vault_auth_method": "approle"}, "c.SecureLLM.vault_approle_role_id"),
    ({"vault_auth_method": "jwt", "vault_role": "r"}, "c.SecureLLM.vault_jwt_path"),
    ({"vault_auth_method": "kubernetes"}, "c.SecureLLM.vault_role"),
    ({"models": {"gpt": {"model": "openai/gpt-4o", "secret_path": "llm/openai"}}}, "c.SecureLLM.models['gpt']"),
    ({"models": {"gpt": {"model": "openai/gpt-4o", "secret_path": "p", "secret_key": "k", "api_key": "x"}}},
     "unknown key"),
    ({"models": {"gpt": {"model": "openai/gpt-4o", "secret_path": "p", "secret_key": "k",
                         "api_base": "http://10.1.2.3:9000/v1"}}}, "c.SecureLLM.allowed_hosts"),
    ({"models": {"m": {"model": "somecloud/x", "secret_path": "p", "secret_key": "k"}}}, "set api_base"),
    ({"models": {"gpt": {"model": "openai/gpt-4o", "secret_path": "p", "secret_key": "k",
                         "api_base": "http://127.0.0.1:9000/v1"}}, "allowed_hosts": ["127.0.0.1:9000"]}, "allow_http"),
    ({"models": {"gpt": {"model": "openai/gpt-4o", "secret_path": "p", "secret_key": "k",
                         "api_base": "http://127.0.0.1:9000/v1", "allow_http": "yes"}},
      "allowed_hosts": ["127.0.0.1:9000"]}, "'allow_http' must be"),
    ({"models": {"gpt": {"model": "openai/gpt-4o", "secret_path": "p", "secret_key": "k", "stream_usage": 0}}},
     "'stream_usage' must be True or False"),
    ({"redaction_placeholder": "[{secret}]"}, "c.SecureLLM.redaction_placeholder"),
    ({"secret_cache_ttl": -1.0}, "c.SecureLLM.secret_cache_ttl"),
    ({"allowed_hosts": ["https://api.openai.com/v1"]}, "c.SecureLLM.allowed_hosts"),
])
def test_check_config_names_the_trait(traits, needle):
    with pytest.raises(ConfigError) as ei:
        make(**traits).check_config()
    assert needle in str(ei.value)


def test_valid_config_passes():
    make(models={"gpt": {"model": "gpt-4o-mini", "secret_path": "llm/{user}/openai", "secret_key": "api_key"}},
         ).check_config()
    make(models={"local": {"model": "openai/llama3", "secret_path": "llm/local", "secret_key": "api_key",
                           "api_base": "http://127.0.0.1:9000/v1", "allow_http": True}},
         allowed_hosts=["127.0.0.1:9000"]).check_config()


def test_misconfigured_server_refuses_to_start(tmp_path):
    """A real `jupyter server` with a bad model entry exits non-zero and names the trait."""
    cfg = tmp_path / "jupyter_server_config.py"
    cfg.write_text(textwrap.dedent('''
        c.ServerApp.jpserver_extensions = {"jupyter_securellm": True}
        c.ServerApp.open_browser = False
        c.ServerApp.port = 0
        c.ServerApp.ip = "127.0.0.1"
        c.SecureLLM.models = {"gpt": {"model": "openai/gpt-4o", "secret_path": "llm/openai",
                                      "secret_key": "api_key", "api_base": "http://10.9.9.9/v1"}}
    '''))
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "JUPYTER_CONFIG_DIR": str(tmp_path),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    p = subprocess.run([sys.executable, "-m", "jupyter_server", f"--config={cfg}", "--allow-root",
                        "--ServerApp.root_dir=" + str(tmp_path)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode != 0
    assert "c.SecureLLM.allowed_hosts" in p.stderr and "models['gpt']" in p.stderr


def test_wrong_trait_type_refuses_to_start(tmp_path):
    cfg = tmp_path / "jupyter_server_config.py"
    cfg.write_text('c.ServerApp.jpserver_extensions = {"jupyter_securellm": True}\n'
                   'c.ServerApp.open_browser = False\nc.ServerApp.port = 0\n'
                   'c.SecureLLM.vault_auth_method = "password"\n')
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "JUPYTER_CONFIG_DIR": str(tmp_path),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    p = subprocess.run([sys.executable, "-m", "jupyter_server", f"--config={cfg}", "--allow-root",
                        "--ServerApp.root_dir=" + str(tmp_path)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode != 0 and "vault_auth_method" in p.stderr
