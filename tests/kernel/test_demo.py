"""`make demo` (python -m jupyter_securellm.demo): starts, serves JupyterLab with the quickstart open,
stops everything on Ctrl-C, SIGTERM and SIGHUP, leaves nothing running after SIGKILL, cleans up after a
killed run on the next start, works a second time, and reports a busy port clearly."""
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


def _start_demo(port: int, tmpdir=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_SECURELLM")}
    env["PYTHONUNBUFFERED"] = "1"
    if tmpdir is not None:  # run files and working directories of this test only
        env["TMPDIR"] = str(tmpdir)
    return subprocess.Popen([sys.executable, "-m", "jupyter_securellm.demo", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids, timeout=60) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {p for p in pids if _alive(p)}
        if not left:
            return left
        time.sleep(0.2)
    return {p for p in pids if _alive(p)}


def _ports_free(*ports, timeout=30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_listening(p) for p in ports):
            return True
        time.sleep(0.2)
    return False


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


def _running_demo(port, tmpdir):
    proc = _start_demo(port, tmpdir)
    text = _read_until(proc, "Press Ctrl-C")
    bao = int(re.search(r"OpenBao \(dev\):\s+http://127\.0\.0\.1:(\d+)", text).group(1))
    url = re.search(r"JupyterLab:\s+(\S+)", text).group(1)
    return proc, bao, url


def _start_a_kernel(url):
    req = urllib.request.Request(url.split("lab/tree")[0] + "api/kernels?" + url.split("?", 1)[1],
                                 data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 201


def _stop_with(proc, sig, port, bao, tmp_path):
    """Send `sig`; every process the demo started (a kernel included) goes, both ports free up, and its
    working directory and run file are removed."""
    family = _descendants(proc.pid)
    assert len(family) >= 3  # OpenBao, JupyterLab, the kernel
    proc.send_signal(sig)
    rest = proc.communicate(timeout=90)[0]
    assert proc.returncode == 0, rest
    assert f"Stopping JupyterLab, the provider and OpenBao ({signal.Signals(sig).name})" in rest
    assert not _wait_gone(family, 10), "a process the demo started outlived it"
    assert _ports_free(port, bao)
    assert not list(tmp_path.glob("securellm-demo-*")), "the demo left its working directory behind"
    assert not list(tmp_path.glob(f"jupyter-securellm-demo-{os.getuid()}/*.json"))


def test_port_held_by_an_earlier_demo_is_named_and_sigterm_stops_everything(tmp_path):
    port = _free_port()
    first, bao, url = _running_demo(port, tmp_path)
    try:
        second = _start_demo(port, tmp_path)  # not interactive (stdin is not a terminal)
        out = second.communicate(timeout=120)[0]
        assert second.returncode == 2, out
        assert f"Port {port} on 127.0.0.1 is held by an earlier `make demo` (pid {first.pid}" in out
        assert f"kill {first.pid}" in out and "DEMO_PORT=" in out and "Traceback" not in out
        assert first.poll() is None and _listening(port)  # the earlier demo is untouched
        _start_a_kernel(url)
        _stop_with(first, signal.SIGTERM, port, bao, tmp_path)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()


def test_at_a_terminal_the_earlier_demo_is_offered_to_stop(tmp_path):
    import pty

    port = _free_port()
    first, _bao, _ = _running_demo(port, tmp_path)
    master, slave = pty.openpty()
    second = None
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_SECURELLM")}
        env.update(PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path))
        second = subprocess.Popen([sys.executable, "-m", "jupyter_securellm.demo", "--port", str(port)],
                                  stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=env, start_new_session=True)
        os.write(master, b"y\n")  # the answer to "Stop it? [y/N]"
        text = _read_until(second, "Press Ctrl-C")
        assert f"port {port} is held by an earlier `make demo` (pid {first.pid}" in text and "Stop it? [y/N]" in text
        assert f"stopped an earlier `make demo` (pid {first.pid}" in text
        assert first.wait(timeout=30) == 0  # it stopped cleanly, by its own SIGTERM handling
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=90) == 0
    finally:
        os.close(master)
        os.close(slave)
        for p in (first, second):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_sigkill_children_die_next_start_cleans_up_and_sighup_stops_it(tmp_path):
    port = _free_port()
    proc, bao, _url = _running_demo(port, tmp_path)
    family = _descendants(proc.pid)
    assert len(family) >= 2
    workdirs = list(tmp_path.glob("securellm-demo-*"))
    assert len(workdirs) == 1
    os.kill(proc.pid, signal.SIGKILL)  # no handler runs: only PR_SET_PDEATHSIG stops the children
    proc.wait()
    assert not _wait_gone(family, 60), "the demo's children survived its SIGKILL"
    assert _ports_free(port, bao)
    assert workdirs[0].exists()  # left behind: nothing ran to remove it ...
    # ... until the next start, which cleans up and says so; then a closed terminal (SIGHUP) stops it
    port2 = _free_port()
    proc2 = _start_demo(port2, tmp_path)
    try:
        text = _read_until(proc2, "Press Ctrl-C")
        assert f"cleaned up after a demo that did not stop (pid {proc.pid})" in text
        assert not workdirs[0].exists()
        bao2 = int(re.search(r"OpenBao \(dev\):\s+http://127\.0\.0\.1:(\d+)", text).group(1))
        _start_a_kernel(re.search(r"JupyterLab:\s+(\S+)", text).group(1))
        _stop_with(proc2, signal.SIGHUP, port2, bao2, tmp_path)
    finally:
        if proc2.poll() is None:
            os.killpg(proc2.pid, signal.SIGKILL)
            proc2.wait()
