"""Two real Jupyter servers (two processes) share one budget through a real PostgreSQL: 50 concurrent
calls split over both never overspend, and the refused ones never reach the provider."""
from __future__ import annotations

import concurrent.futures
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jupyter_securellm.demo import stop_group
from jupyter_securellm.detect import fake_secret
from jupyter_securellm.testing.openbao import free_port
from jupyter_securellm.testing.provider import FakeProvider

ROOT = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, cfg: dict):
        self.dir = Path(tempfile.mkdtemp(prefix="securellm-gov-server-"))
        self.port = free_port()
        self.token = secrets.token_hex(16)
        for sub in ("runtime", "data", "config", "root"):
            (self.dir / sub).mkdir()
        conf = {"ServerApp": {"jpserver_extensions": {"jupyter_securellm": True}, "allow_unauthenticated_access": False,
                              "open_browser": False, "ip": "127.0.0.1", "port": self.port, "port_retries": 0,
                              "allow_root": True,
                              "root_dir": str(self.dir / "root")},
                "IdentityProvider": {"token": self.token}, "SecureLLM": cfg}
        (self.dir / "config" / "jupyter_server_config.json").write_text(json.dumps(conf))
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(self.dir / "runtime"), JUPYTER_DATA_DIR=str(self.dir / "data"),
                   JUPYTER_CONFIG_DIR=str(self.dir / "config"), JUPYTER_PLATFORM_DIRS="1",
                   LITELLM_LOCAL_MODEL_COST_MAP="True",
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyter_server"], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)

    def wait(self, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.dir / "server.log").read_text()[-3000:]
            try:
                return self.call("GET", "status")
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        raise TimeoutError((self.dir / "server.log").read_text()[-3000:])

    def call(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/jupyter-securellm/v1/{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=180) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def stop(self):
        try:
            stop_group(self.proc)
        finally:
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.mark.slow
def test_fifty_calls_over_two_servers_sharing_postgresql_never_overspend(openbao, postgres_url, tmp_path):
    key = fake_secret("openai-api-key")
    openbao.write_secret("llm/two", {"api_key": key})
    tok = tmp_path / "vault-token"
    tok.write_text(openbao.root_token)
    tok.chmod(0o600)
    with FakeProvider(key) as provider:
        cfg = {"vault_url": openbao.url, "vault_auth_method": "token", "vault_token_path": str(tok),
               "models": {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/two", "secret_key": "api_key",
                                  "api_base": provider.url + "/v1", "allow_http": True}},
               "allowed_hosts": [f"127.0.0.1:{provider.port}"], "preload_litellm": True,
               "budgets": {"default": {"daily_tokens": 1050}}, "database_url": postgres_url}
        servers = [Server(cfg), Server(cfg)]
        try:
            for s in servers:
                s.wait()
            body = {"model": "gpt", "max_tokens": 50, "messages": [{"role": "user", "content": "w " * 100}]}
            with concurrent.futures.ThreadPoolExecutor(50) as pool:
                results = list(pool.map(lambda i: servers[i % 2].call("POST", "chat/completions", body), range(50)))
            codes = [c for c, _ in results]
            # each reservation is 200 prompt bytes + 50 = 250 tokens (an upper bound): 4 fit in 1,050 at once
            assert set(codes) <= {200, 429} and codes.count(200) >= 4
            refused = [b for c, b in results if c == 429]
            assert refused and all(b["error"]["type"] == "budget_exhausted" for b in refused)
            assert len(provider.requests) == codes.count(200)  # refused calls never reached the provider
            _, st = servers[0].call("GET", "status")
            used = st["budget"]["daily_tokens"]["used"]
            assert used <= 1050  # never overspent: both servers see the same ledger
            _, st1 = servers[1].call("GET", "status")
            assert st1["budget"]["daily_tokens"]["used"] == used
        finally:
            for s in servers:
                s.stop()
