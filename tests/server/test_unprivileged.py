"""Tier 2 for real: server and kernels run as an unprivileged user (root reads any /proc file,
so this cannot be shown as root). From inside a kernel, /proc/<server>/environ and mem must be
unreadable thanks to prctl(PR_SET_DUMPABLE, 0); the control run without hardening shows the
attack works, so the assertion can fail. The kernel env holds no key, the broker still works.
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
import urllib.request
from pathlib import Path

import pytest

from jupyter_securellm.detect import fake_secret
from jupyter_securellm.testing.openbao import free_port
from jupyter_securellm.testing.provider import FakeProvider

USER = "securellm-test"


def _unavailable(reason: str):
    """CI runs as root with runuser and a system python: there a missing piece is a failure, not a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"tier-2 test cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _needs_root_and_runuser():
    if os.geteuid() != 0 or not shutil.which("runuser"):
        _unavailable("needs root (to create the user) and runuser")


@pytest.fixture(scope="session")
def unpriv_user():
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                       check=True)
        pw = pwd.getpwnam(USER)
    return pw


@pytest.fixture(scope="session")
def user_python(unpriv_user):
    """A venv shim the user can execute: the system python of our minor version + our site-packages.

    The project venv's base interpreter may live under /root (mode 700), which the user cannot
    traverse; we do not loosen /root, we point a tiny pyvenv.cfg at a system interpreter instead.
    """
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(f"python{ver}", path="/usr/bin:/usr/local/bin")
    if base is None:
        _unavailable(f"no system python{ver} the unprivileged user can run")
    d = Path(tempfile.mkdtemp(prefix="securellm-uvenv-"))
    (d / "bin").mkdir()
    (d / "lib" / f"python{ver}").mkdir(parents=True)
    (d / "pyvenv.cfg").write_text(f"home = {os.path.dirname(base)}\ninclude-system-site-packages = false\n")
    (d / "bin" / "python").symlink_to(base)
    import site

    sp = next(p for p in site.getsitepackages() if p.endswith("site-packages"))
    (d / "lib" / f"python{ver}" / "site-packages").symlink_to(sp)
    os.chmod(d, 0o755)
    py = str(d / "bin" / "python")
    probe = subprocess.run(["runuser", "-u", unpriv_user.pw_name, "--", py, "-c",
                            "import jupyter_server, jupyter_securellm.server.app"],
                           capture_output=True, text=True, timeout=120, cwd="/")
    if probe.returncode != 0:
        shutil.rmtree(d, ignore_errors=True)
        _unavailable("the unprivileged user cannot import the project from this checkout "
                    f"(a parent directory is not traversable?): {probe.stderr.strip().splitlines()[-1:]}")
    yield py
    shutil.rmtree(d, ignore_errors=True)


class UserServer:
    """`jupyter server` started with runuser as the unprivileged user, on 127.0.0.1."""

    def __init__(self, python, pw, openbao, provider, harden: bool, leaked_env: dict):
        self.dir = Path(tempfile.mkdtemp(prefix="securellm-userserver-"))
        self.port = free_port()
        self.token = pysecrets.token_hex(16)
        for sub in ("home", "runtime", "data", "config", "root"):
            (self.dir / sub).mkdir()
        vault_token = openbao.create_token(["securellm-broker"], ttl="1h")["client_token"]
        (self.dir / "home" / "vault-token").write_text(vault_token)
        cfg = {
            "ServerApp": {"jpserver_extensions": {"jupyter_securellm": True}, "allow_unauthenticated_access": False,
                          "open_browser": False, "ip": "127.0.0.1", "port": self.port, "port_retries": 0,
                          "root_dir": str(self.dir / "root")},
            "IdentityProvider": {"token": self.token},
            "SecureLLM": {"vault_url": openbao.url, "vault_token_path": str(self.dir / "home" / "vault-token"),
                          "models": {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai",
                                             "secret_key": "api_key", "api_base": provider.url + "/v1",
                                             "allow_http": True}},
                          "allowed_hosts": [f"127.0.0.1:{provider.port}"], "harden_process": harden},
        }
        (self.dir / "config" / "jupyter_server_config.json").write_text(json.dumps(cfg))
        for p in [self.dir, *self.dir.rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir / "home" / "vault-token", 0o600)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.dir / "home"), "LANG": "C.UTF-8",
               "JUPYTER_RUNTIME_DIR": str(self.dir / "runtime"), "JUPYTER_DATA_DIR": str(self.dir / "data"),
               "JUPYTER_CONFIG_DIR": str(self.dir / "config"), "JUPYTER_PLATFORM_DIRS": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", **leaked_env}
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            ["runuser", "-u", pw.pw_name, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()],
             python, "-m", "jupyter_server"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self._wait_ready()

    def _wait_ready(self, timeout=90) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("jupyter server exited:\n" + self.log_text()[-3000:])
            for f in (self.dir / "runtime").glob("jpserver-*.json"):
                try:
                    info = json.loads(f.read_text())
                    self.request("GET", "api/status")
                    return info["pid"]
                except (ValueError, OSError):
                    pass
            time.sleep(0.2)
        raise TimeoutError("jupyter server did not start:\n" + self.log_text()[-3000:])

    def request(self, method, path, body=None, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("Authorization", f"token {self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def run_in_kernel(self, kernel_id: str, code: str, timeout=90) -> str:
        from jupyter_client import BlockingKernelClient

        from jupyter_securellm.testing.kernels import wait_until_ready

        kc = BlockingKernelClient(connection_file=str(self.dir / "runtime" / f"kernel-{kernel_id}.json"))
        kc.load_connection_file()
        kc.start_channels()
        try:
            wait_until_ready(kc, lambda: self.request("GET", f"api/kernels/{kernel_id}").get("execution_state"),
                             timeout=timeout)
            out = []
            reply = kc.execute_interactive(code, timeout=timeout,
                                           output_hook=lambda m: out.append(m["content"].get("text", "")
                                                                            if m["msg_type"] == "stream" else
                                                                            "\n".join(m["content"].get("traceback", []))))
            assert reply["content"]["status"] == "ok", "".join(out)
            return "".join(out)
        finally:
            kc.stop_channels()

    def log_text(self) -> str:
        self.log.flush()
        return (self.dir / "server.log").read_text(errors="replace")

    def stop(self):
        try:
            if self.proc.poll() is None:
                os.kill(self.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
        finally:
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)


PROBE = r'''
import json, os, urllib.request
spid = int(os.environ["PROBE_PID"]) if "PROBE_PID" in os.environ else None
def probe(name):
    try:
        with open(f"/proc/{SERVER_PID}/{name}", "rb") as f:
            data = f.read(65536) if name == "environ" else b""
        return {"ok": True, "data": data.decode("latin-1")}
    except PermissionError as e:
        return {"ok": False, "error": "PermissionError"}
    except OSError as e:
        return {"ok": False, "error": type(e).__name__}
req = urllib.request.Request(os.environ["JUPYTER_SECURELLM_URL"] + "/chat/completions", method="POST",
    data=json.dumps({"model": "gpt", "messages": [{"role": "user", "content": "as nobody"}]}).encode(),
    headers={"X-SecureLLM-Token": os.environ["JUPYTER_SECURELLM_KERNEL_TOKEN"], "Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=60) as r:
    answer = json.loads(r.read())["choices"][0]["message"]["content"]
print(json.dumps({"uid": os.getuid(), "env": dict(os.environ), "environ": probe("environ"), "mem": probe("mem"),
                  "answer": answer}))
'''


@pytest.mark.slow
@pytest.mark.parametrize("harden", [True, False], ids=["hardened", "control-not-hardened"])
def test_kernel_cannot_read_server_memory_or_env(harden, unpriv_user, user_python, openbao, vault_provider_key):
    leaked = {"OPENAI_API_KEY": fake_secret("openai-api-key")}
    with FakeProvider(vault_provider_key) as provider:
        srv = UserServer(user_python, unpriv_user, openbao, provider, harden, leaked)
        try:
            kid = srv.request("POST", "api/kernels", {"name": "python3"})["id"]
            out = srv.run_in_kernel(kid, PROBE.replace("SERVER_PID", str(srv.pid)))
            res = json.loads(out.strip().splitlines()[-1])
            assert res["uid"] == unpriv_user.pw_uid != 0
            assert res["answer"] == "echo: as nobody" and provider.requests[-1].auth_ok
            # (booleans first, so a failure never prints a key)
            env_text = json.dumps(res["env"])
            assert "OPENAI_API_KEY" not in res["env"]
            assert not (leaked["OPENAI_API_KEY"] in env_text), "server env key reached the kernel env"
            assert not (vault_provider_key in out), "the provider key reached the kernel"
            if harden:
                assert res["environ"] == {"ok": False, "error": "PermissionError"}
                assert res["mem"] == {"ok": False, "error": "PermissionError"}
            else:  # the attack the hardening prevents: same uid reads the server's environment
                assert res["environ"]["ok"] and res["mem"]["ok"]
                assert leaked["OPENAI_API_KEY"] in res["environ"]["data"], "control: environ not readable"
            log = srv.log_text()
            assert not (vault_provider_key in log or leaked["OPENAI_API_KEY"] in log), "a key is in the server log"
        finally:
            srv.stop()
