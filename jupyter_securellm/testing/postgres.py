"""A throwaway PostgreSQL cluster for tests (Debian's `postgresql` package: initdb + pg_ctl).

Many servers share budgets through PostgreSQL (`c.SecureLLM.database_url`), so the tests use a real
one. `PostgresCluster().start()` runs `initdb` in a fresh temporary directory and starts the server
on 127.0.0.1 at a free port, with its unix socket in that directory, `trust` authentication for local
connections only, and fsync off (a test cluster: nothing to keep). PostgreSQL refuses to run as root:
as root, the cluster runs as an unprivileged user (`nobody`) through `runuser`.

Fixtures (import them into a conftest, or list this module in `pytest_plugins`):

- ``postgres`` (session): one cluster for the session;
- ``postgres_url`` (function): a fresh, empty database on it, as a SQLAlchemy URL
  (``postgresql+psycopg://postgres@127.0.0.1:<port>/<db>``).
"""
from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

__all__ = ["PostgresCluster", "find_pg_bin", "postgres", "postgres_url"]

_LIVE: list = []


@atexit.register
def _stop_leftovers() -> None:
    for c in list(_LIVE):
        c.stop()


def find_pg_bin() -> Path:
    """The directory holding initdb/pg_ctl: $PG_BIN, pg_config --bindir, or the newest /usr/lib/postgresql/*/bin."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if cands:
        return Path(cands[-1]).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).parent
    raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql "
                            "(make test does it), or set PG_BIN")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    def __init__(self, *, user: str = "postgres"):
        self.bin = find_pg_bin()
        self.superuser = user
        self.port: int | None = None
        self.dir: Path | None = None
        self._run_as = None
        self._postmaster: int | None = None  # its pid, to stop it even if its folder was removed under it

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def _cmd(self, *args: str) -> list[str]:
        if self._run_as:
            return ["runuser", "-u", self._run_as, "--", *args]
        return list(args)

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        out = subprocess.run(self._cmd(*args), capture_output=True, text=True, cwd=str(self.dir))
        if out.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
        return out

    def start(self) -> "PostgresCluster":
        self.dir = Path(tempfile.mkdtemp(prefix="securellm-pg-"))
        if os.geteuid() == 0:
            import pwd

            self._run_as = "nobody"
            pw = pwd.getpwnam(self._run_as)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.superuser, "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        self.port = _free_port()
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                "-c shared_buffers=32MB")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"),
                  "-o", opts, "-w", "-t", "60", "start")
        _LIVE.append(self)
        try:
            self._postmaster = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            self._postmaster = None
        self._wait()
        return self

    def _wait(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def dsn(self, db: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.superuser} dbname={db}"

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.superuser}@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str | None = None) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.dir is None:
            return
        if self in _LIVE:
            _LIVE.remove(self)
        try:
            if self.data.is_dir():
                subprocess.run(self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                                         "stop"), capture_output=True, cwd=str(self.dir), timeout=60)
            elif self._postmaster:  # the folder was removed from outside: stop the server we started by its pid
                import signal

                try:
                    os.kill(self._postmaster, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
                except ProcessLookupError:
                    pass
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


try:
    import pytest
except ImportError:  # the module is usable without pytest (demo, benchmarks)
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def postgres():
        """One real PostgreSQL cluster for the session (127.0.0.1, free port), stopped at the end."""
        with PostgresCluster() as c:
            yield c

    @pytest.fixture
    def postgres_url(postgres):
        """A fresh empty database on the session cluster, as a SQLAlchemy URL."""
        return postgres.create_database()
