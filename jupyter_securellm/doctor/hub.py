"""Hub checks: in hub-service mode the broker is a JupyterHub service under its own uid (tier 3).

Two things make that deployment real: single-user servers may call the service (their token
carries `access:services!service=<name>`, which JupyterHub does not grant by default), and the
service process runs under a uid no user kernel has. Both are read from the Hub's config
(`--hub-config jupyterhub_config.py`) and, inside a single-user server, from the Hub API.
"""
from __future__ import annotations

import json
import os
import pwd
import urllib.request

from .config import load_config, loaded
from .core import FAIL, PASS, SKIP, WARN, DoctorError, Result, check


def _mode(ctx):
    """(broker_mode, hub_service_name) from the SecureLLM config (traits, or raw values before they exist)."""
    c = loaded(ctx)
    raw = c.config.get("SecureLLM", {})
    mode = c.value("broker_mode") if c.has("broker_mode") else raw.get("broker_mode", "local")
    name = c.value("hub_service_name") if c.has("hub_service_name") else raw.get("hub_service_name", "")
    return mode or "local", name or ""


def _hub(ctx):
    if not ctx.hub_config:
        return None
    return ctx.cached("hub", lambda: load_config([ctx.hub_config]))


def _service(hub, name):
    for s in hub.get("JupyterHub", {}).get("services", []) or []:
        if isinstance(s, dict) and s.get("name") == name:
            return s
    return None


def scope_grants(scopes, name) -> bool:
    return any(s in (f"access:services!service={name}", "access:services") for s in scopes or ())


def _token_scopes():
    """Scopes of this single-user server's own token, from the Hub API (None outside a Hub)."""
    token, api = os.environ.get("JUPYTERHUB_API_TOKEN"), os.environ.get("JUPYTERHUB_API_URL")
    if not (token and api):
        return None
    req = urllib.request.Request(api.rstrip("/") + "/user", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return json.loads(resp.read().decode()).get("scopes") or []
    except OSError as exc:
        raise DoctorError(f"the Hub API at {api} did not answer ({type(exc).__name__})") from None


@check("hub.service-scope", "hub", "single-user token may reach the broker service")
def service_scope(ctx):
    mode, name = _mode(ctx)
    if mode != "hub-service":
        return Result("hub.service-scope", SKIP, f"broker_mode is {mode!r}, not 'hub-service'")
    if not name:
        return Result("hub.service-scope", FAIL, "broker_mode is 'hub-service' but hub_service_name is empty",
                      "set c.SecureLLM.hub_service_name to the service's name in c.JupyterHub.services")
    want = f"access:services!service={name}"
    live = _token_scopes()
    if live is not None:
        if scope_grants(live, name):
            return Result("hub.service-scope", PASS, f"this server's Hub token has {want}")
        return Result("hub.service-scope", FAIL, f"this server's Hub token lacks {want}: every broker call is refused",
                      f"grant it to the 'server' role in c.JupyterHub.load_roles (scopes: ['{want}', ...])")
    hub = _hub(ctx)
    if hub is None:
        return Result("hub.service-scope", WARN, "not inside a Hub server and no --hub-config given: scope not checked",
                      "pass --hub-config jupyterhub_config.py")
    if _service(hub, name) is None:
        return Result("hub.service-scope", FAIL, f"c.JupyterHub.services has no service named {name!r}",
                      "add the broker service (jupyter-securellm broker --config FILE) under that name")
    roles = hub.get("JupyterHub", {}).get("load_roles", []) or []
    server_role = next((r for r in roles if isinstance(r, dict) and r.get("name") == "server"), None)
    if server_role is None or not scope_grants(server_role.get("scopes"), name):
        return Result("hub.service-scope", FAIL, f"the 'server' role lacks {want}: single-user servers cannot call "
                      "the broker", f"add {{'name': 'server', 'scopes': ['inherit', '{want}']}} to "
                      "c.JupyterHub.load_roles (keep the scopes the server role already needs)")
    return Result("hub.service-scope", PASS, f"the 'server' role grants {want}")


@check("hub.service-uid", "hub", "broker service runs under its own uid")
def service_uid(ctx):
    mode, name = _mode(ctx)
    if mode != "hub-service":
        return Result("hub.service-uid", SKIP, f"broker_mode is {mode!r}, not 'hub-service'")
    hub = _hub(ctx)
    if hub is None:
        if os.environ.get("JUPYTERHUB_SERVICE_NAME") == name:
            return Result("hub.service-uid", WARN, "running inside the service: cannot compare with user uids",
                          "run the doctor with --hub-config jupyterhub_config.py on the Hub host")
        return Result("hub.service-uid", WARN, "no --hub-config given: the service's uid was not checked",
                      "pass --hub-config jupyterhub_config.py")
    svc = _service(hub, name or "")
    if svc is None:
        return Result("hub.service-uid", FAIL, f"c.JupyterHub.services has no service named {name!r}",
                      "add the broker service under that name with a 'user' key")
    user = svc.get("user")
    if not user:
        return Result("hub.service-uid", FAIL, f"service {name!r} has no 'user': it runs as the Hub's own user",
                      "give it a dedicated system user: {'name': ..., 'user': 'securellm', 'command': [...]}")
    if user == "root":
        return Result("hub.service-uid", FAIL, f"service {name!r} runs as root",
                      "create a dedicated unprivileged user for the broker (useradd --system securellm)")
    users = set(hub.get("Authenticator", {}).get("allowed_users", []) or []) | \
        set(hub.get("Authenticator", {}).get("admin_users", []) or [])
    if user in users:
        return Result("hub.service-uid", FAIL, f"service {name!r} runs as {user!r}, who is also a Hub user: "
                      "that user's kernels could read the broker's memory and credential files",
                      "use a dedicated system user that is not a Hub user")
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return Result("hub.service-uid", WARN, f"service {name!r} runs as {user!r}, which does not exist on this "
                      "machine", f"useradd --system {user} on the Hub host")
    return Result("hub.service-uid", PASS, f"service {name!r} runs as {user!r} (uid {uid}), not a Hub user")
