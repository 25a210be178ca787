# /etc/securellm/broker_config.py: the broker service's own config (owner securellm, mode 0600).
# The same c.SecureLLM.* names as a single-user server's jupyter_server_config.py (docs/broker.md).
c = get_config()  # noqa: F821

c.SecureLLM.vault_url = "https://vault.example.org:8200"
c.SecureLLM.vault_auth_method = "approle"
c.SecureLLM.vault_approle_role_id = "REPLACE-with-the-role-id-of-securellm-broker"
c.SecureLLM.vault_approle_secret_id_path = "/var/lib/securellm/secret-id"  # mode 0600, owner securellm
c.SecureLLM.vault_kv_mount = "secret"
c.SecureLLM.models = {
    "gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai", "secret_key": "api_key"},
    # per-user keys: {user} is the JupyterHub user the Hub vouched for, never a request field
    "claude": {"model": "anthropic/claude-3-5-sonnet-latest", "secret_path": "llm/users/{user}/anthropic",
               "secret_key": "api_key"},
}
c.SecureLLM.allowed_hosts = ["api.openai.com", "api.anthropic.com"]
c.SecureLLM.user_secret_paths = ["users/{user}/*"]
c.SecureLLM.hub_service_name = "securellm"
# Several replicas: budgets are shared and exact through PostgreSQL (a row lock per user, docs/budgets.md) ...
# c.SecureLLM.database_url = "postgresql+psycopg://securellm@db.example.org/securellm"
# ... and each replica keeps its OWN audit chain: never point two processes at one file. The pod (host) name
# makes the path unique; verify each file with `jupyter-securellm audit verify` (docs/jupyterhub.md).
# import socket
# c.SecureLLM.audit_log_path = f"/var/log/securellm/audit-{socket.gethostname()}.jsonl"
