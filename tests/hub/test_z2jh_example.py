"""The zero-to-jupyterhub example (examples/jupyterhub/values.yaml, broker.yaml), loaded by the real code.

No Kubernetes here, so the objects are not applied; what is checked is everything short of that:
- `hub.services` and `hub.loadRoles` turned into `c.JupyterHub.services` / `load_roles` the way z2jh's
  hub config does (files/hub/jupyterhub_config.py in the chart: each dict entry becomes a list item with
  its key as `name`; `apiToken` becomes `api_token`), then a real `JupyterHub` initializes with them
  (its own role and scope validation, the service registered with its URL and token);
- `singleuser.extraFiles`: the file lands where jupyter_server reads SecureLLM settings from, and a real
  `ServerApp` loads it into a hub-service config that passes `check_config()`;
- broker.yaml's ConfigMap is a broker config that `jupyter-securellm broker --config FILE` accepts (our
  own loader, `hub.service.load_app`), and the Deployment, Service, Secret and values agree on names,
  ports, labels and paths.
Validation of the whole values file against the chart's JSON schema needs the chart (not vendored):
examples/jupyterhub/check_values.py, run and recorded in docs/jupyterhub.md.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "jupyterhub"
SERVICE = "securellm"


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((EXAMPLES / "values.yaml").read_text())


@pytest.fixture(scope="module")
def k8s() -> dict:
    """broker.yaml's objects by kind (one of each)."""
    docs = [d for d in yaml.safe_load_all((EXAMPLES / "broker.yaml").read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert len(kinds) == len(set(kinds)), kinds
    return {d["kind"]: d for d in docs}


def z2jh_hub_config(values: dict):
    """What z2jh's hub config makes of hub.services and hub.loadRoles (the chart's jupyterhub_config.py)."""
    from traitlets.config import Config

    c = Config()
    c.JupyterHub.services = []
    for key, service in values["hub"]["services"].items():
        service = dict(service)
        service.setdefault("name", key)
        service["api_token"] = service.pop("apiToken")
        c.JupyterHub.services.append(service)
    c.JupyterHub.load_roles = [dict(role, name=role.get("name", key)) for key, role in values["hub"]["loadRoles"].items()]
    return c


def init_hub(config, tmp_path):
    """A real JupyterHub initialized (database, roles, services) with `config`; not started."""
    from jupyterhub.app import JupyterHub

    config.JupyterHub.db_url = f"sqlite:///{tmp_path}/jupyterhub.sqlite"
    config.JupyterHub.cookie_secret = os.urandom(32)
    config.JupyterHub.authenticator_class = "dummy"
    config.JupyterHub.log_level = "WARN"
    config.JupyterHub.pid_file = str(tmp_path / "jupyterhub.pid")
    tmp_path.mkdir(parents=True, exist_ok=True)
    app = JupyterHub(config=config)
    asyncio.run(app.initialize([]))
    return app


def test_hub_services_and_roles_load_into_a_real_jupyterhub(values, tmp_path):
    from jupyterhub import orm

    app = init_hub(z2jh_hub_config(values), tmp_path / "ok")
    svc = app._service_map[SERVICE]
    assert svc.url == values["hub"]["services"][SERVICE]["url"] and svc.orm.api_tokens, "service not registered"
    roles = {r.name: r for r in app.db.query(orm.Role)}
    scope = f"access:services!service={SERVICE}"
    assert scope in roles["server"].scopes and scope in roles["user"].scopes
    assert "read:users:groups!user" in roles["server"].scopes
    assert [s.name for s in roles["securellm-broker"].services] == [SERVICE]
    assert roles["securellm-broker"].scopes == ["read:users:groups"]  # nothing more than it needs

    # control: the same loading refuses a scope that does not exist (the validation above is real)
    bad = json.loads(json.dumps(values))
    bad["hub"]["loadRoles"]["server"]["scopes"].append("access:service!service=securellm")
    with pytest.raises(Exception, match="access:service!service=securellm|does not exist"):
        init_hub(z2jh_hub_config(bad), tmp_path / "bad")


def test_singleuser_extra_file_is_read_by_jupyter_server_as_a_hub_service_config(values, tmp_path, monkeypatch):
    from jupyter_core.paths import SYSTEM_CONFIG_PATH
    from jupyter_server.serverapp import ServerApp

    from jupyter_securellm.server.app import SecureLLM

    extra = values["singleuser"]["extraFiles"]["securellm-config"]
    mount = Path(extra["mountPath"])
    # jupyter_server reads <dir>/jupyter_server_config.json from each config dir; SYSTEM_CONFIG_PATH is on
    # every install (a file in jupyter_server_config.d/ would only enable extensions)
    assert str(mount.parent) in SYSTEM_CONFIG_PATH and mount.name == "jupyter_server_config.json", mount

    def server_config(directory: Path):
        monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(directory))
        monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(directory))
        monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
        app = ServerApp()
        try:
            app.load_config_file()
            return app.config
        finally:
            ServerApp.clear_instance()

    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / mount.name).write_text(json.dumps(extra["data"]))  # z2jh writes .json data as JSON
    cfg = server_config(mounted)
    assert cfg.SecureLLM.broker_mode == "hub-service", cfg
    # control: the path the example used before is not read for settings (the extension would run in local mode)
    old = tmp_path / "old" / "jupyter_server_config.d"
    old.mkdir(parents=True)
    (old / "securellm-hub.json").write_text(json.dumps(extra["data"]))
    assert "SecureLLM" not in server_config(old.parent)

    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://hub:8081/hub/api")  # as in a single-user pod
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t" * 32)
    app = SecureLLM(config=cfg)
    app.check_config()
    assert app.broker_mode == "hub-service" and app.hub_service_name == SERVICE
    assert app.hub_service_url == values["hub"]["services"][SERVICE]["url"]  # the URL the Hub registered


def _broker_config_file(k8s: dict, tmp_path: Path) -> tuple[Path, dict]:
    """broker.yaml's ConfigMap file, with its directories moved under tmp_path; and the container."""
    dep = k8s["Deployment"]["spec"]["template"]["spec"]
    (container,) = dep["containers"]
    args = container["args"]
    assert args[:3] == ["jupyter-securellm", "broker", "--config"], args
    conf_path = Path(args[3])
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in dep["volumes"]}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == str(conf_path.parent)]
    cm = k8s["ConfigMap"]
    assert volumes[name]["configMap"]["name"] == cm["metadata"]["name"]
    text = cm["data"][conf_path.name]
    audit_dir = next(m["mountPath"] for m in mounts.values() if "audit" in m["name"])
    assert audit_dir in text, "the audit log must be on the audit volume"
    (tmp_path / "audit").mkdir()
    path = tmp_path / conf_path.name
    path.write_text(text.replace(audit_dir, str(tmp_path / "audit")))
    return path, container


def test_broker_yaml_config_map_is_a_valid_broker_config(k8s, values, tmp_path, monkeypatch):
    from jupyter_securellm.hub.service import load_app

    path, container = _broker_config_file(k8s, tmp_path)
    env = {e["name"]: e.get("value") for e in container["env"]}
    app = load_app(str(path))  # what `jupyter-securellm broker --config FILE` runs first (check_config included)
    assert app.broker_mode == "local" and app.hub_service_name == env["JUPYTERHUB_SERVICE_NAME"] == SERVICE
    assert app.vault_auth_method == "kubernetes" and app.vault_role
    assert app.database_url.startswith("postgresql+psycopg://") and "@" in app.database_url
    assert ":" not in urlsplit(app.database_url).netloc.split("@")[0], "no password in the URL (PGPASSWORD)"
    assert app.audit_log_path == str(tmp_path / "audit" / f"audit-{socket.gethostname()}.jsonl")
    assert set(app.models) and all(m.get("secret_path") for m in app.models.values())

    # control: the same loader refuses a broken config
    path.write_text(path.read_text().replace('"kubernetes"', '"kubernetess"'))
    with pytest.raises(SystemExit, match="kubernetess|vault_auth_method"):
        load_app(str(path))
    # and the stand-alone example (AppRole) loads too
    example = load_app(str(EXAMPLES / "broker_config.py"))
    assert example.vault_auth_method == "approle" and example.hub_service_name == SERVICE


def test_broker_objects_and_values_agree(k8s, values):
    dep, svc, secret = k8s["Deployment"], k8s["Service"], k8s["Secret"]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"] == labels
    assert dep["spec"]["replicas"] >= 2

    # the Hub's URL for the service is this Service, on its port, which reaches the container's port
    url = urlsplit(values["hub"]["services"][SERVICE]["url"])
    assert url.hostname.split(".")[0] == svc["metadata"]["name"]
    (port,) = svc["spec"]["ports"]
    assert url.port == port["port"] and port["targetPort"] == container["ports"][0]["containerPort"]
    assert container["args"][container["args"].index("--port") + 1] == str(port["targetPort"])
    assert values["singleuser"]["extraFiles"]["securellm-config"]["data"]["SecureLLM"]["hub_service_url"] == url.geturl()

    # probes hit the service's health endpoint under the prefix the Hub routes to it
    prefix = env["JUPYTERHUB_SERVICE_PREFIX"]["value"]
    assert prefix == f"/services/{SERVICE}/"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": prefix + "jupyter-securellm/v1/health",
                                               "port": port["targetPort"]}
    # secrets come from the Secret, whose keys exist; the Hub token placeholder is the values' one
    for name in ("JUPYTERHUB_API_TOKEN", "PGPASSWORD"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    assert secret["stringData"]["hub-api-token"] == values["hub"]["services"][SERVICE]["apiToken"]
    assert re.match(r"^https?://hub\.", env["JUPYTERHUB_API_URL"]["value"])

    # the single-user network policy lets user pods reach exactly these pods on this port
    (rule,) = values["singleuser"]["networkPolicy"]["egress"]
    assert rule["to"][0]["podSelector"]["matchLabels"].items() <= labels.items()
    assert rule["ports"] == [{"port": port["targetPort"], "protocol": "TCP"}]
    # the broker never runs as root, and one audit file per pod on a shared volume
    sc = dep["spec"]["template"]["spec"]["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
    assert k8s["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_check_values_merges_like_helm_and_reports_schema_errors(tmp_path):
    """examples/jupyterhub/check_values.py on a small chart of the same shape (the real one is not vendored)."""
    import subprocess
    import sys

    item = {"type": "object", "additionalProperties": False, "required": ["mountPath"],
            "properties": {"mountPath": {"type": "string"}, "data": {"type": "object"}}}
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
              "required": ["hub", "singleuser"],
              "properties": {"hub": {"type": "object", "required": ["baseUrl"]},
                             "singleuser": {"type": "object", "properties": {
                                 "extraFiles": {"type": "object", "additionalProperties": item}}}}}
    chart = tmp_path / "chart"
    chart.mkdir()
    (chart / "values.schema.json").write_text(json.dumps(schema))
    (chart / "values.yaml").write_text(yaml.safe_dump({"hub": {"baseUrl": "/"}, "singleuser": {}}))

    def check(values: dict):
        (tmp_path / "v.yaml").write_text(yaml.safe_dump(values))
        out = subprocess.run([sys.executable, str(EXAMPLES / "check_values.py"), str(chart), "--values",
                              str(tmp_path / "v.yaml")], capture_output=True, text=True, timeout=60)
        return out.returncode, json.loads(out.stdout)

    good = {"singleuser": {"extraFiles": {"f": {"mountPath": "/etc/x.json", "data": {}}}}}
    rc, report = check(good)  # hub.baseUrl comes from the chart's defaults, as with helm
    assert rc == 0 and report["valid"] and report["control_rejected"], report
    rc, report = check(dict(good, hub={"baseUrl": None}, extra=1))  # null removes a default; unknown key
    assert rc == 1 and not report["valid"], report
    assert any("baseUrl" in e for e in report["errors"]) and any("'extra'" in e for e in report["errors"])
