"""Process checks against real Jupyter servers with the extension.

Passing: the demo stack (`make demo`'s own configuration), checked through its `status` endpoint
and by pid; this is also the run that proves `doctor` passes on the demo deployment in CI.
Failing: a server started with `harden_process = False` and a provider-shaped key in its
environment. The report names the variable and never prints its value.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from jupyter_securellm.detect import fake_secret


def doctor(*args):
    proc = subprocess.run([sys.executable, "-m", "jupyter_securellm", "doctor", "--format", "json", *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr
    return proc, {c["check"]: c for c in json.loads(proc.stdout)["checks"]}


@pytest.fixture(scope="module")
def demo(demo_stack):
    return demo_stack


def test_doctor_passes_on_the_demo_deployment(demo):
    """What CI asserts: the whole doctor, against the demo's config and its running server."""
    config = str(demo.workdir / "jupyter_server_config.py")
    proc, checks = doctor("--config", config, "--url", demo.base_url, "--token", demo.jupyter_token,
                          "--pid", str(demo.jupyter.pid))
    failing = {k: v for k, v in checks.items() if v["status"] in ("fail", "error")}
    assert proc.returncode == 0, failing
    assert checks["process.dumpable"]["status"] == "pass"
    assert checks["process.environment"]["status"] == "pass"
    assert checks["config.valid"]["status"] == "pass"
    assert checks["config.credential-files"]["status"] == "pass"
    assert checks["config.vault-tls"]["status"] == "warn" and "(reachable)" in checks["config.vault-tls"]["summary"]
    assert demo.jupyter_token not in proc.stdout


def test_status_reports_the_process_flags(demo):
    req = urllib.request.Request(demo.base_url + "jupyter-securellm/v1/status",
                                 headers={"Authorization": f"token {demo.jupyter_token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
    assert body["process"]["dumpable"] is False
    assert body["tier"] == 2  # the broker holds the key in a non-dumpable server
    assert body["process"]["secret_env"] == []
    assert body["process"]["pid"] == demo.jupyter.pid


@pytest.fixture(scope="module")
def unhardened(tmp_path_factory):
    """A real `jupyter server` with the extension, hardening off and a provider key in its environment."""
    from jupyter_securellm.demo import free_port

    work = tmp_path_factory.mktemp("unhardened")
    cfg = work / "jupyter_server_config.py"
    cfg.write_text("c = get_config()\nc.ServerApp.jpserver_extensions = {'jupyter_securellm': True}\n"
                   "c.SecureLLM.harden_process = False\nc.SecureLLM.preload_litellm = False\n")
    port, token, key = free_port(), secrets.token_urlsafe(16), fake_secret("openai-api-key")
    env = {**os.environ, "OPENAI_API_KEY": key, "JUPYTER_RUNTIME_DIR": str(work / "rt"),
           "JUPYTER_CONFIG_DIR": str(work / "cfg")}
    argv = [str(Path(sys.executable).parent / "jupyter"), "server", f"--config={cfg}", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={work}",
            f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, (work / "server.log").read_text()[-2000:]
        try:
            urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
    yield {"url": url, "token": token, "pid": proc.pid, "key": key}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def test_unhardened_server_fails_through_status(unhardened):
    proc, checks = doctor("--only", "process", "--url", unhardened["url"], "--token", unhardened["token"])
    assert proc.returncode == 1
    assert checks["process.dumpable"]["status"] == "fail"
    req = urllib.request.Request(unhardened["url"] + "jupyter-securellm/v1/status",
                                 headers={"Authorization": f"token {unhardened['token']}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert json.loads(resp.read())["tier"] == 1  # a dumpable server: only accidental exposure is defended
    env = checks["process.environment"]
    assert env["status"] == "fail" and any("OPENAI_API_KEY" in d for d in env["details"])
    assert unhardened["key"] not in proc.stdout + proc.stderr


def test_unhardened_server_fails_by_pid(unhardened):
    proc, checks = doctor("--only", "process", "--pid", str(unhardened["pid"]))
    assert proc.returncode == 1
    env = checks["process.environment"]
    assert env["status"] == "fail" and any("OPENAI_API_KEY" in d for d in env["details"])
    # a root-owned process proves nothing by its /proc ownership; any other uid does
    assert checks["process.dumpable"]["status"] == ("warn" if os.geteuid() == 0 else "fail")
    assert unhardened["key"] not in proc.stdout + proc.stderr


def test_wrong_token_cannot_run(unhardened):
    proc = subprocess.run([sys.executable, "-m", "jupyter_securellm", "doctor", "--only", "process", "--url",
                           unhardened["url"], "--token", "wrong"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "HTTP 403" in proc.stderr
