"""Hub checks against config files: the SecureLLM config in hub-service mode and the Hub's own
jupyterhub_config.py (the service's `user`, the `server` role's scope)."""
from __future__ import annotations

import contextlib
import io
import json
import pwd

from jupyter_securellm.cli import main

SCOPE = "access:services!service=securellm"


def files(tmp_path, service: dict | None, roles: list, users=("alice", "bob"), mode="hub-service", name="securellm"):
    sl = tmp_path / "jupyter_server_config.py"
    sl.write_text(f"c = get_config()\nc.SecureLLM.broker_mode = {mode!r}\nc.SecureLLM.hub_service_name = {name!r}\n")
    hub = tmp_path / "jupyterhub_config.py"
    services = [service] if service else []
    hub.write_text("c = get_config()\n"
                   f"c.JupyterHub.services = {services!r}\n"
                   f"c.JupyterHub.load_roles = {roles!r}\n"
                   f"c.Authenticator.allowed_users = {set(users)!r}\n")
    return str(sl), str(hub)


def hub_checks(tmp_path, *a, **kw):
    sl, hub = files(tmp_path, *a, **kw)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["doctor", "--only", "hub", "--format", "json", "--config", sl, "--hub-config", hub])
    return rc, {c["check"]: c for c in json.loads(out.getvalue())["checks"]}


def system_user() -> str:
    """A real account on this machine that is not a Hub user (Debian has `nobody`)."""
    return pwd.getpwnam("nobody").pw_name


def test_a_proper_hub_service_passes(tmp_path):
    svc = {"name": "securellm", "user": system_user(), "command": ["jupyter-securellm", "broker"]}
    rc, checks = hub_checks(tmp_path, svc, [{"name": "server", "scopes": ["inherit", SCOPE]}])
    assert rc == 0
    assert checks["hub.service-scope"]["status"] == "pass"
    assert checks["hub.service-uid"]["status"] == "pass" and "nobody" in checks["hub.service-uid"]["summary"]


def test_missing_scope_fails(tmp_path):
    svc = {"name": "securellm", "user": system_user()}
    rc, checks = hub_checks(tmp_path, svc, [{"name": "server", "scopes": ["inherit"]}])
    assert rc == 1 and checks["hub.service-scope"]["status"] == "fail"
    assert SCOPE in checks["hub.service-scope"]["fix"]


def test_scope_for_another_service_does_not_count(tmp_path):
    svc = {"name": "securellm", "user": system_user()}
    rc, checks = hub_checks(tmp_path, svc, [{"name": "server", "scopes": ["access:services!service=other"]}])
    assert checks["hub.service-scope"]["status"] == "fail"


def test_service_without_its_own_user_fails(tmp_path):
    rc, checks = hub_checks(tmp_path, {"name": "securellm"}, [{"name": "server", "scopes": [SCOPE]}])
    assert rc == 1 and checks["hub.service-uid"]["status"] == "fail"


def test_service_running_as_a_hub_user_fails(tmp_path):
    rc, checks = hub_checks(tmp_path, {"name": "securellm", "user": "alice"}, [{"name": "server", "scopes": [SCOPE]}])
    assert checks["hub.service-uid"]["status"] == "fail" and "also a Hub user" in checks["hub.service-uid"]["summary"]


def test_service_as_root_fails(tmp_path):
    rc, checks = hub_checks(tmp_path, {"name": "securellm", "user": "root"}, [{"name": "server", "scopes": [SCOPE]}])
    assert checks["hub.service-uid"]["status"] == "fail"


def test_service_name_not_in_the_hub_fails(tmp_path):
    rc, checks = hub_checks(tmp_path, None, [{"name": "server", "scopes": [SCOPE]}])
    assert checks["hub.service-scope"]["status"] == "fail" and checks["hub.service-uid"]["status"] == "fail"


def test_local_mode_skips_the_hub_checks(tmp_path):
    rc, checks = hub_checks(tmp_path, None, [], mode="local")
    assert rc == 0 and {c["status"] for c in checks.values()} == {"skip"}

