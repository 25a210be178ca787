"""`make demo` (python -m jupyter_securellm.demo): starts, serves JupyterLab with the quickstart open,
stops everything on Ctrl-C, works a second time, and reports a busy port clearly."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start_demo(port: int):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_SECURELLM")}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen([sys.executable, "-m", "jupyter_securellm.demo", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def _read_until(proc, marker: str, timeout: float = 120) -> str:
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        out.append(line)
        if marker in line:
            return "".join(out)
    raise AssertionError("demo did not print %r; got:\n%s" % (marker, "".join(out)))


def test_demo_starts_serves_and_stops_twice():
    for _run in range(2):  # the second run must work as well (fresh state each time)
        port = _free_port()
        proc = _start_demo(port)
        try:
            text = _read_until(proc, "Press Ctrl-C")
            url = re.search(r"JupyterLab:\s+(\S+)", text).group(1)
            bao = int(re.search(r"OpenBao \(dev\):\s+http://127\.0\.0\.1:(\d+)", text).group(1))
            assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/quickstart.ipynb?token=")
            assert "STAND-IN" in text and "%%llm" in text
            with urllib.request.urlopen(url, timeout=30) as resp:
                assert resp.status == 200
            assert _listening(port) and _listening(bao)
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does
            rest = proc.communicate(timeout=60)[0]
            assert proc.returncode == 0, rest
            assert "Stopping" in rest
            assert not _listening(port) and not _listening(bao), "something the demo started is still running"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_demo_reports_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = _start_demo(port)
        out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2
    assert f"Port {port} on 127.0.0.1 is busy" in out and "DEMO_PORT=" in out
    assert "Traceback" not in out
