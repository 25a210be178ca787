# JupyterHub with the SecureLLM broker as a Hub service under its own Unix user (trust tier 3).
# See docs/jupyterhub.md. The Hub must run as root for the service's `user` key (and for
# LocalProcessSpawner); on Kubernetes use examples/jupyterhub/values.yaml instead.
import sys

c = get_config()  # noqa: F821

SERVICE = "securellm"
BROKER_PORT = 10101  # the broker listens on 127.0.0.1 only; users reach it through their own server

c.JupyterHub.services = [
    {
        "name": SERVICE,
        "url": f"http://127.0.0.1:{BROKER_PORT}",
        # its own Unix user: no user's kernel or server shares this uid, so none can read its memory,
        # /proc/<pid>/environ or files (AppRole secret id, config)
        "user": "securellm",
        "cwd": "/var/lib/securellm",
        "command": [sys.executable, "-m", "jupyter_securellm", "broker",
                    "--config", "/etc/securellm/broker_config.py"],
        "environment": {"LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    },
]

c.JupyterHub.load_roles = [
    # Users may call the broker service at all (a server token only gets scopes its user holds).
    {"name": "user", "scopes": ["self", f"access:services!service={SERVICE}"]},
    # The single-user server's own token ($JUPYTERHUB_API_TOKEN) forwards calls to the service as
    # its user. The default `server` role lacks access:services!service=<name>: add it here.
    # read:users:groups!user lets a tier-2 (broker_mode="local") server read its user's groups.
    {"name": "server", "scopes": ["users:activity!user", "access:servers!server",
                                  f"access:services!service={SERVICE}", "read:users:groups!user"]},
    # The broker reads the groups of the users it serves (policy input.groups, budget groups).
    {"name": "securellm-broker", "services": [SERVICE], "scopes": ["read:users:groups"]},
]

# Each user's server forwards to the service and holds no key and no Vault credential.
# (Alternatively put these two lines in the image's jupyter_server_config.py.)
c.Spawner.environment = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
c.Spawner.args = [
    "--SecureLLM.broker_mode=hub-service",
    f"--SecureLLM.hub_service_name={SERVICE}",
    f"--SecureLLM.hub_service_url=http://127.0.0.1:{BROKER_PORT}",
]
