"""A real JupyterHub for tests: the Hub, configurable-http-proxy, real Unix users, local-process spawner.

Why real Unix users: tier 3 is a uid boundary. The Hub runs as root (as on CI), spawns each user's
`jupyterhub-singleuser` with `LocalProcessSpawner` under that user's uid, and runs the broker as a
managed service under a third uid (the service `user` key, exactly as in
examples/jupyterhub/jupyterhub_config.py). Users are created with `useradd` under names unique to the
run and removed at teardown, with every process they still own.

The project venv's interpreter may live under /root (mode 700), which the users cannot traverse, so
they run a shim venv: the system python of the same minor version plus our site-packages (the same
trick as tests/server/test_unprivileged.py). PYTHONPATH points at the checkout under test. A checkout
or venv under a folder others cannot traverse (CI's clone dir, `mktemp -d`, mode 700) gets o+x on each
such ancestor for the stack's life (`grant_traverse`), restored at teardown.

Everything binds 127.0.0.1 on free ports; the Hub's database and cookie secret live in the stack's
private directory. Fixture: `hub_stack` (one Hub per test module, broker in hub-service mode);
`HubStack(..., mode="local")` gives tier 2 on a Hub (each user's server runs its own broker).
"""
from __future__ import annotations

import json
import os
import pwd
import secrets as pysecrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ..demo import stop_group
from .openbao import free_port

SERVICE = "securellm"
ROOT = Path(__file__).resolve().parents[2]  # the checkout under test (PYTHONPATH for every process)


class HubUnavailable(RuntimeError):
    """A prerequisite (root, useradd, configurable-http-proxy, a system python) is missing."""


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise HubUnavailable(what)


def prerequisites() -> None:
    _need(os.geteuid() == 0, "the Hub tests run the Hub as root (LocalProcessSpawner setuids to real users)")
    for tool in ("useradd", "userdel"):
        _need(shutil.which(tool) is not None, f"{tool} is missing (apt-get install passwd)")
    _need(shutil.which("configurable-http-proxy") is not None,
          "configurable-http-proxy is missing (npm install -g configurable-http-proxy; `make test` does it)")


def need_listable(paths) -> None:
    """The checkout and site-packages themselves must be listable by others (Python's importer lists them).

    A fresh clone is (git honours the umask, 022); we do not open a directory's contents ourselves."""
    for p in paths:
        mode = Path(p).resolve().stat().st_mode & 0o7777
        _need(mode & 0o005 == 0o005, f"the test users cannot list {Path(p).resolve()} (mode {mode:o}) to import "
                                     f"from it: run `chmod o+rx {Path(p).resolve()}`")


def grant_traverse(paths) -> list[tuple[Path, int]]:
    """Give others search (x) on each path and every ancestor that lacks it; return what changed.

    Why: the test users import the checkout (PYTHONPATH) and run our site-packages, so they must
    traverse every directory down to them. CI clones into folders we do not control, often mode 700
    (`mktemp -d`). Only o+x is added (traverse, not list); `restore_modes` puts the modes back.
    """
    changed: list[tuple[Path, int]] = []
    seen: set[Path] = set()
    try:
        for start in paths:
            p = Path(start).resolve()
            for d in [p, *p.parents]:
                if d in seen or not d.is_dir():
                    continue
                seen.add(d)
                mode = d.stat().st_mode & 0o7777
                if mode & 0o001:
                    continue
                try:
                    os.chmod(d, mode | 0o001)
                except OSError as exc:
                    raise HubUnavailable(
                        f"the test users cannot traverse {d} (mode {mode:o}) and adding o+x failed ({exc}); "
                        f"run `chmod o+x {d}` or move the checkout/venv under a directory others can traverse"
                    ) from None
                changed.append((d, mode))
    except BaseException:
        restore_modes(changed)
        raise
    return changed


def restore_modes(changed: list[tuple[Path, int]]) -> None:
    """Undo `grant_traverse`: the original modes, innermost first."""
    for d, mode in reversed(changed):
        try:
            os.chmod(d, mode)
        except OSError:
            pass  # the directory is gone: nothing to restore


def user_python(base_dir: Path) -> str:
    """A venv shim any user can execute: the system python of our minor version + our site-packages."""
    import site

    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(f"python{ver}", path="/usr/bin:/usr/local/bin")
    _need(base is not None, f"no system python{ver} that other users can run")
    d = base_dir / "pyshim"
    (d / "bin").mkdir(parents=True)
    (d / "lib" / f"python{ver}").mkdir(parents=True)
    (d / "pyvenv.cfg").write_text(f"home = {os.path.dirname(base)}\ninclude-system-site-packages = false\n")
    (d / "bin" / "python").symlink_to(base)
    sp = next(p for p in site.getsitepackages() if p.endswith("site-packages"))
    (d / "lib" / f"python{ver}" / "site-packages").symlink_to(sp)
    return str(d / "bin" / "python")


def http(method: str, url: str, body=None, token: str | None = None, headers=None, timeout: float = 60):
    """(status, parsed JSON or text) for one request; (0, reason) when nothing answered. Never raises."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if token:
        req.add_header("Authorization", f"token {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, code = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, code = e.read(), e.code
    except OSError as e:  # no connection at all: status 0 and the reason
        return 0, type(getattr(e, "reason", e)).__name__
    try:
        return code, json.loads(raw) if raw else None
    except ValueError:
        return code, raw.decode("utf-8", "replace")


class HubUser:
    def __init__(self, name: str, home: Path):
        self.name = name
        self.home = home
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    @property
    def runtime_dir(self) -> Path:
        return self.home / ".local" / "share" / "jupyter" / "runtime"


class HubStack:
    """OpenBao + stand-in provider (given) + a JupyterHub with two users and the broker service."""

    def __init__(self, bao, provider, *, mode: str = "hub-service", groups: dict | None = None,
                 n_users: int = 2, base_dir: Path | None = None, replicas: int = 1,
                 broker_config: dict | None = None, audit: bool = False, lookup_users: tuple[int, ...] = ()):
        prerequisites()
        self.bao, self.provider, self.mode = bao, provider, mode
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix="securellm-hub-"))
        os.chmod(self.dir, 0o755)  # users traverse it to reach the shim and the single-user config
        self.tag = pysecrets.token_hex(3)
        self.user_names = [f"slh{self.tag}u{i}" for i in range(n_users)]
        self.broker_name = f"slh{self.tag}k"
        self.groups = groups if groups is not None else {"analysts": [self.user_names[0]]}
        self.users: dict[str, HubUser] = {}
        self.proc: subprocess.Popen | None = None
        self.admin_token = pysecrets.token_hex(24)
        self.vault_prefix = f"hub-{self.tag}"
        # broker replicas: managed services of the same uid and config; each writes its own audit chain
        self.services = [SERVICE] + [f"{SERVICE}-r{i}" for i in range(1, replicas)]
        self.broker_extra = dict(broker_config or {})  # e.g. budgets and a shared database_url
        self.audit = audit
        # hub-service mode: these users' servers get no hub_service_url and look the service up in the Hub API
        self.lookup_users = {self.user_names[i] for i in lookup_users}
        self.audit_paths: dict[str, Path] = {}
        self.ports = {k: free_port() for k in ("proxy", "hub", "proxy_api", *self.services)}
        self.ports["service"] = self.ports[SERVICE]
        self._log = None
        self._granted: list[tuple[Path, int]] = []

    # -- URLs ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}"

    @property
    def api(self) -> str:
        return f"{self.url}/hub/api"

    @property
    def service_direct_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['service']}"

    def service_url(self, endpoint: str, via_proxy: bool = True, service: str = SERVICE) -> str:
        base = self.url if via_proxy else f"http://127.0.0.1:{self.ports[service]}"
        return f"{base}/services/{service}/jupyter-securellm/v1/{endpoint}"

    def user_url(self, user: str, path: str = "") -> str:
        return f"{self.url}/user/{user}/{path}"

    @property
    def alice(self) -> str:
        return self.user_names[0]

    @property
    def bob(self) -> str:
        return self.user_names[1]

    # -- set-up --------------------------------------------------------------------------------------
    def _useradd(self, name: str) -> HubUser:
        home = self.dir / "home" / name
        home.parent.mkdir(exist_ok=True)
        os.chmod(home.parent, 0o755)
        subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh",
                        "--no-user-group", "--gid", "nogroup" if _group_exists("nogroup") else "users", name],
                       check=True, capture_output=True)
        os.chmod(home, 0o700)
        u = HubUser(name, home)
        self.users[name] = u
        return u

    def _write_owned(self, user: HubUser, rel: str, text: str, mode: int = 0o600) -> Path:
        p = user.home / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        os.chown(p, user.uid, user.gid)
        os.chmod(p, mode)
        return p

    def _vault(self) -> dict:
        """Keys in OpenBao and a least-privilege AppRole for the broker (read the model and {user} paths)."""
        p = self.vault_prefix
        self.bao.write_secret(f"{p}/llm/openai", {"api_key": self.provider.key})
        self.user_secrets = {}
        for u in self.user_names:
            value = "pw-" + pysecrets.token_hex(12)
            self.user_secrets[u] = value
            self.bao.write_secret(f"{p}/users/{u}/db", {"password": value})
        policy = self.bao.read_policy(f"securellm-broker-{self.tag}", [f"{p}/llm/*", f"{p}/users/*"])
        role_id = self.bao.create_approle(f"securellm-broker-{self.tag}", [policy])
        return {"role_id": role_id, "secret_id": self.bao.approle_secret_id(f"securellm-broker-{self.tag}"),
                "policy": policy}

    def securellm_config(self) -> dict:
        p = self.vault_prefix
        return {
            "vault_url": self.bao.url,
            "models": {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": f"{p}/llm/openai",
                               "secret_key": "api_key", "api_base": self.provider.url + "/v1", "allow_http": True}},
            "allowed_hosts": [f"127.0.0.1:{self.provider.port}"],
            "user_secret_paths": [f"{p}/users/{{user}}/*"],
            "hub_service_name": SERVICE,
        }

    def start(self) -> "HubStack":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        import site

        # the users traverse to the checkout (PYTHONPATH), the venv and its site-packages, and our dir
        sps = [p for p in site.getsitepackages() if p.endswith("site-packages")]
        need_listable([ROOT, *sps])
        self._granted = grant_traverse([ROOT, sys.prefix, self.dir, *sps])
        self.python = user_python(self.dir)
        for name in self.user_names:
            self._useradd(name)
        broker = self._useradd(self.broker_name)
        vault = self._vault()
        self.vault_info = vault

        # the broker's own config and AppRole secret id: readable by the broker's uid only
        self.secret_id_path = self._write_owned(broker, "secret-id", vault["secret_id"])
        cfg = dict(self.securellm_config(), vault_auth_method="approle", vault_approle_role_id=vault["role_id"],
                   vault_approle_secret_id_path=str(self.secret_id_path), **self.broker_extra)
        service_defs = []
        for name in self.services:
            rcfg = dict(cfg, hub_service_name=name)
            if self.audit:  # one hash chain per replica: each appends to its own file
                self.audit_paths[name] = broker.home / f"audit-{name}.jsonl"
                rcfg["audit_log_path"] = str(self.audit_paths[name])
            fname = "securellm_broker.json" if name == SERVICE else f"securellm_broker-{name}.json"
            path = self._write_owned(broker, fname, json.dumps({"SecureLLM": rcfg}))
            if name == SERVICE:
                self.broker_config = path
            service_defs.append((name, path))

        # the single-user servers' config (no secrets in it)
        conf = self.dir / "singleuser-config"
        conf.mkdir()
        su, args, user_args = {}, [], {}
        if self.mode == "hub-service":  # as in examples/jupyterhub/jupyterhub_config.py: c.Spawner.args
            args = ["--SecureLLM.broker_mode=hub-service", f"--SecureLLM.hub_service_name={SERVICE}"]
            user_args = {u: [] if u in self.lookup_users else [f"--SecureLLM.hub_service_url={self.service_direct_url}"]
                         for u in self.user_names}
        else:  # tier 2 on a Hub: each server runs the broker, with a Vault token of its own user
            su.update(self.securellm_config(), vault_token_path="~/.vault-token", **self.broker_extra)
            for name in self.user_names:
                tok = self.bao.create_token([vault["policy"]], ttl="2h")["client_token"]
                self._write_owned(self.users[name], ".vault-token", tok)
        (conf / "jupyter_server_config.json").write_text(json.dumps({
            "ServerApp": {"jpserver_extensions": {"jupyter_securellm": True}}, "SecureLLM": su}))
        for p in (conf, conf / "jupyter_server_config.json"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)

        env_common = {"PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "JUPYTER_PLATFORM_DIRS": "1",
                      "PYTHONDONTWRITEBYTECODE": "1"}
        hub_cfg = {
            "bind_url": self.url, "hub_bind_url": f"http://127.0.0.1:{self.ports['hub']}",
            "proxy_api": f"http://127.0.0.1:{self.ports['proxy_api']}", "db": f"sqlite:///{self.dir}/jupyterhub.sqlite",
            "cookie_secret": str(self.dir / "cookie_secret"), "users": self.user_names, "groups": self.groups,
            "python": self.python, "single_user_args": args, "user_args": user_args, "single_user_env": dict(env_common, JUPYTER_CONFIG_DIR=str(conf)),
            "services": [{"name": name, "url": f"http://127.0.0.1:{self.ports[name]}", "user": self.broker_name,
                          "cwd": str(broker.home), "environment": env_common,
                          "command": [self.python, "-m", "jupyter_securellm", "broker", "--config", str(path)]}
                         for name, path in service_defs],
            "admin_token": self.admin_token, "password": pysecrets.token_hex(8),
        }
        (self.dir / "cookie_secret").write_bytes(pysecrets.token_hex(32).encode())
        os.chmod(self.dir / "cookie_secret", 0o600)
        self.password = hub_cfg["password"]
        (self.dir / "hub.json").write_text(json.dumps(hub_cfg))
        os.chmod(self.dir / "hub.json", 0o600)
        (self.dir / "jupyterhub_config.py").write_text(HUB_CONFIG.format(hub_json=str(self.dir / "hub.json")))

        self._log = open(self.dir / "hub.log", "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VAULT", "BAO"))}
        env.update(PYTHONPATH=str(ROOT), LITELLM_LOCAL_MODEL_COST_MAP="True",
                   PATH=os.environ.get("PATH", "") + ":/usr/local/bin:/usr/bin:/bin")
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(self.dir / "jupyterhub_config.py")],
                                     cwd=self.dir, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait(lambda: http("GET", f"http://127.0.0.1:{self.ports['hub']}/hub/api/", timeout=5)[0] == 200, 90, "the Hub API")
        for name in self.services:
            self.wait_service(service=name)

    def wait_service(self, timeout: float = 90, service: str = SERVICE) -> int:
        """Wait until the broker service answers through the proxy; returns its pid."""
        self._wait(lambda: http("GET", self.service_url("health", service=service), timeout=5)[0] == 200, timeout,
                   f"the broker service {service!r}")
        return self.service_pid(service)

    def _wait(self, ok, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the Hub exited while waiting for {what}:\n{self.log_text()[-4000:]}")
            try:
                if ok():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{what} did not come up in {timeout:.0f} s:\n{self.log_text()[-4000:]}")

    def log_text(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            return (self.dir / "hub.log").read_text(errors="replace")
        except OSError:
            return ""

    # -- the Hub's REST API as admin -------------------------------------------------------------------
    def hub(self, method: str, path: str, body=None, token: str | None = None):
        return http(method, f"{self.api}/{path}", body, token=token or self.admin_token)

    def service_pid(self, service: str = SERVICE) -> int:
        code, model = self.hub("GET", f"services/{service}")
        assert code == 200, model
        return int(model.get("pid") or 0)

    def user_token(self, user: str, scopes: list[str] | None = None) -> str:
        body = {"note": "test", "expires_in": 3600}
        if scopes is not None:
            body["scopes"] = scopes
        code, model = self.hub("POST", f"users/{user}/tokens", body)
        assert code in (200, 201), model
        return model["token"]

    def start_server(self, user: str, timeout: float = 120) -> dict:
        code, body = self.hub("POST", f"users/{user}/server")
        assert code in (201, 202, 400), body  # 400: already running
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, model = self.hub("GET", f"users/{user}")
            srv = (model or {}).get("servers", {}).get("")
            if srv and srv.get("ready"):
                return srv
            if self.proc.poll() is not None:
                raise RuntimeError("the Hub exited:\n" + self.log_text()[-4000:])
            time.sleep(0.3)
        raise TimeoutError(f"{user}'s server did not start:\n{self.log_text()[-4000:]}")

    def server_pid(self, user: str) -> int:
        code, model = self.hub("GET", f"users/{user}?include_stopped_servers=0")
        return int(model["servers"][""]["state"]["pid"])

    def stop_server(self, user: str, timeout: float = 60) -> None:
        self.hub("DELETE", f"users/{user}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, model = self.hub("GET", f"users/{user}")
            if not (model or {}).get("servers"):
                return
            time.sleep(0.3)
        raise TimeoutError(f"{user}'s server did not stop")

    def kernel(self, user: str) -> "HubKernel":
        return HubKernel(self, user)

    # -- teardown ------------------------------------------------------------------------------------------
    def _stop_proxy(self) -> None:
        """The Hub stops the proxy it started; if the Hub died first, stop it here (it runs in its own session)."""
        pid = _proxy_pid(self.dir)
        if pid is None:
            return
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"configurable-http-proxy" not in f.read() or os.readlink(f"/proc/{pid}/cwd") != str(self.dir):
                    return  # the pid was reused by something else
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            for name in self.user_names:  # stop user servers through the Hub, then the Hub (and its proxy)
                try:
                    self.hub("DELETE", f"users/{name}/server")
                except OSError:
                    pass
            stop_group(self.proc)
        self._stop_proxy()
        for u in list(self.users.values()):
            _kill_uid(u.uid)
            subprocess.run(["userdel", "--remove", u.name], capture_output=True)
            self.users.pop(u.name, None)
        if self._log is not None:
            self._log.close()
            self._log = None
        keep = os.environ.get("SECURELLM_HUB_LOG")  # debugging: keep the Hub's log after teardown
        if keep:
            shutil.copy(self.dir / "hub.log", keep)
        for policy in ("vault_info",):
            info = getattr(self, policy, None)
            if info:
                try:
                    self.bao.client().sys.delete_policy(info["policy"])
                except Exception:  # noqa: BLE001 - best effort; the OpenBao dir goes away anyway
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)
        restore_modes(self._granted)
        self._granted = []


def _proxy_pid(directory: Path) -> int | None:
    try:
        return int((directory / "jupyterhub-proxy.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of a uid this stack created (unique to the run, so all of them are ours)."""
    for _ in range(3):
        pids = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.stat(f"/proc/{d}").st_uid == uid:
                        pids.append(int(d))
                except OSError:
                    pass
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)


class HubKernel:
    """A kernel started through the Hub proxy in a user's server; driven over its connection file (as root)."""

    def __init__(self, stack: HubStack, user: str):
        from jupyter_client import BlockingKernelClient

        self.stack, self.user = stack, user
        code, body = http("POST", stack.user_url(user, "api/kernels"), {"name": "python3"}, token=stack.admin_token)
        assert code == 201, (code, body)
        self.kernel_id = body["id"]
        conn = stack.users[user].runtime_dir / f"kernel-{self.kernel_id}.json"
        deadline = time.monotonic() + 60
        while not conn.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.kc = BlockingKernelClient()
        self.kc.load_connection_file(str(conn))
        self.kc.start_channels()
        deadline = time.monotonic() + 120
        while True:
            try:
                self.kc.wait_for_ready(timeout=60)
                break
            except RuntimeError:  # a missed heartbeat while a loaded machine starts the kernel is not a death
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def run(self, code: str, timeout: float = 120) -> tuple[str, str]:
        """(stdout + display text, error text) of one cell."""
        out, err = [], []

        def hook(msg):
            t, c = msg["msg_type"], msg["content"]
            if t == "stream":
                (out if c["name"] == "stdout" else err).append(c["text"])
            elif t in ("execute_result", "display_data", "update_display_data"):
                out.append(c["data"].get("text/plain", "") + "\n")
                out.append(c["data"].get("text/markdown", ""))
            elif t == "error":
                err.append(f"{c['ename']}: {c['evalue']}")

        self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        return "".join(out), "".join(err)

    def json(self, code: str, timeout: float = 120):
        """Run a cell that prints one JSON line last; return it parsed."""
        out, err = self.run(code, timeout)
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert lines, f"the cell printed nothing; stderr/error: {err}"
        return json.loads(lines[-1])

    def shutdown(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            http("DELETE", self.stack.user_url(self.user, f"api/kernels/{self.kernel_id}"), token=self.stack.admin_token)


# The Hub's config, written next to its database; values come from a private JSON file (mode 600).
HUB_CONFIG = '''
import json
h = json.load(open({hub_json!r}))
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = h["bind_url"]
c.JupyterHub.hub_bind_url = h["hub_bind_url"]
c.ConfigurableHTTPProxy.api_url = h["proxy_api"]
c.JupyterHub.db_url = h["db"]
c.JupyterHub.cookie_secret_file = h["cookie_secret"]
c.JupyterHub.log_level = "INFO"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = h["password"]
c.Authenticator.allowed_users = set(h["users"])
c.JupyterHub.load_groups = {{g: {{"users": us}} for g, us in h["groups"].items()}}
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [h["python"], "-m", "jupyterhub.singleuser"]
c.Spawner.environment = h["single_user_env"]
c.Spawner.args = h["single_user_args"]
def _user_args(spawner):  # per user: an explicit broker URL, or none (looked up in the Hub API)
    spawner.args = list(h["single_user_args"]) + list(h["user_args"].get(spawner.user.name, []))
c.Spawner.pre_spawn_hook = _user_args
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
brokers = [s["name"] for s in h["services"]]  # the broker service and its replicas, if any
SERVICE_SCOPES = ["access:services!service=", "read:services!service="]
c.JupyterHub.services = [dict(s) for s in h["services"]] + [
    {{"name": "test-admin", "api_token": h["admin_token"], "admin": True}},
]
c.JupyterHub.load_roles = [
    # a server token gets only scopes its user holds: users may access the broker service
    {{"name": "user", "scopes": ["self"] + [s + b for b in brokers for s in SERVICE_SCOPES]}},
    # the single-user server's own token may call the broker service and read its user's groups
    # (and look the service's URL up when it has no hub_service_url)
    {{"name": "server", "scopes": ["users:activity!user", "access:servers!server", "read:users:groups!user"]
                                + [s + b for b in brokers for s in SERVICE_SCOPES]}},
    # the broker service reads any user's groups (policy input.groups, budget groups), nothing else
    {{"name": "securellm-broker", "services": brokers, "scopes": ["read:users:groups"]}},
]
'''


@pytest.fixture(scope="module")
def hub_stack(openbao):
    """One Hub per test module: two users, the broker as a managed service under a third user.

    Alice's server has no `hub_service_url` (it looks the service up in the Hub API); Bob's has one."""
    from .pytest_plugin import new_provider_key
    from .provider import FakeProvider

    try:
        prerequisites()
    except HubUnavailable as exc:
        pytest.fail(f"the JupyterHub stack cannot run here: {exc}")
    with FakeProvider(new_provider_key()) as provider:
        # Alice's server looks the service's URL up in the Hub API, Bob's is given it; the service keeps an audit log
        stack = HubStack(openbao, provider, lookup_users=(0,), audit=True).start()
        try:
            yield stack
        finally:
            stack.stop()


def process_memory_contains(pid: int, needle: bytes, limit: int = 1 << 30) -> bool:
    """Whether `needle` is anywhere in the readable memory of process `pid` (run as root)."""
    found = False
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if "r" not in perms:
                continue
            start, end = (int(x, 16) for x in addr.split("-"))
            if end - start > limit:
                continue
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    found = True
                    break
            except (OSError, OverflowError, ValueError):
                continue  # [vvar] and friends
    return found


def process_environ(pid: int) -> bytes:
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read()
