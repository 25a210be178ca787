"""Real kernels for tests: `Kernel` (an ipykernel over jupyter_client) and `ServerKernel` (a kernel
started by a real Jupyter server, so it gets the broker URL and its own capability token).

A pytest plugin (registered in tests/conftest.py): fixtures `kernel_factory` (plain kernels),
`demo_stack` (OpenBao dev server + stand-in provider + a `jupyter server` process, per module) and
`server_kernel` (kernels of that stack).
"""
from __future__ import annotations

import contextlib

import os
import queue
import sys
import time

import pytest



def wait_until_ready(kc, server_state, timeout: float = 90) -> None:
    """`kc.wait_for_ready`, asking the server before believing a kernel is dead.

    The connection file exists before the kernel listens; without a manager, jupyter_client judges
    "alive" by the heartbeat, which a kernel still starting on a loaded machine misses: "Kernel died
    before replying". `server_state()` returns the server's `execution_state` for the kernel.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            kc.wait_for_ready(timeout=max(1.0, deadline - time.monotonic()))
            return
        except RuntimeError:
            if server_state() == "dead" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)

class Kernel:
    """A real ipykernel over jupyter_client; `run()` returns every iopub message of one execution."""

    def __init__(self, env: dict[str, str], cwd: str):
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_cmd = None
        self.km.start_kernel(env=env, cwd=cwd)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.all_messages: list[dict] = []

    def run(self, code: str, timeout: float = 60, allow_error: bool = False, stdin=None):
        msg_id = self.kc.execute(code, allow_stdin=stdin is not None)
        msgs = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"kernel did not go idle running: {code[:80]!r}")
            try:
                msg = self.kc.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            msgs.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        msgs.append(reply)
        self.all_messages.extend(msgs)
        if not allow_error and reply["content"]["status"] != "ok":
            raise AssertionError(f"cell failed: {reply['content'].get('ename')}: {reply['content'].get('evalue')}")
        return msgs

    @staticmethod
    def text(msgs) -> str:
        import json

        return "\n".join(json.dumps(m["content"]) + json.dumps(m.get("metadata", {})) for m in msgs)

    @staticmethod
    def stream_text(msgs, name="stdout") -> str:
        return "".join(m["content"]["text"] for m in msgs
                       if m["msg_type"] == "stream" and m["content"]["name"] == name)

    def shutdown(self):
        if self.km is None:
            return
        km, self.km = self.km, None
        try:
            self.kc.stop_channels()
        finally:
            km.shutdown_kernel(now=False)


class ServerKernel(Kernel):
    """A kernel started by a real Jupyter server (so it gets the broker URL and its own token)."""

    def __init__(self, stack):
        import json as _json
        import urllib.request

        from jupyter_client import BlockingKernelClient

        self.stack = stack
        req = urllib.request.Request(f"{stack.base_url}api/kernels", data=b'{"name": "python3"}', method="POST",
                                     headers={"Authorization": f"token {stack.jupyter_token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            self.kernel_id = _json.load(resp)["id"]
        conn = stack.workdir / "runtime" / f"kernel-{self.kernel_id}.json"
        deadline = time.monotonic() + 30
        while not conn.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.kc = BlockingKernelClient()
        self.kc.load_connection_file(str(conn))
        self.kc.start_channels()
        self.km = True
        self.all_messages = []
        wait_until_ready(self.kc, lambda: self.rest("GET", f"api/kernels/{self.kernel_id}").get("execution_state"))

    def rest(self, method: str, path: str, body=None):
        import json as _json
        import urllib.request

        data = None if body is None else _json.dumps(body).encode()
        req = urllib.request.Request(f"{self.stack.base_url}{path}", data=data, method=method,
                                     headers={"Authorization": f"token {self.stack.jupyter_token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
        return _json.loads(raw) if raw else None

    def interrupt(self):
        self.rest("POST", f"api/kernels/{self.kernel_id}/interrupt")

    def shutdown(self):
        if self.km is None:
            return
        self.km = None
        try:
            self.kc.stop_channels()
        finally:
            try:
                self.rest("DELETE", f"api/kernels/{self.kernel_id}")
            except OSError:
                pass


@contextlib.contextmanager
def running_demo(workdir, **kw):
    """A DemoStack (OpenBao with AppRole for the broker, the stand-in provider, a real `jupyter server`
    on a free 127.0.0.1 port) in `workdir`, stopped on exit. For fixtures of another scope than `demo_stack`."""
    from jupyter_securellm.demo import DemoStack, free_port

    stack = DemoStack(workdir, app="server", port=free_port(), **kw)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory):
    """OpenBao dev server (AppRole for the broker), the stand-in provider and a real Jupyter server."""
    with running_demo(tmp_path_factory.mktemp("stack")) as stack:
        yield stack


@pytest.fixture
def server_kernel(demo_stack):
    started = []

    def make():
        k = ServerKernel(demo_stack)
        started.append(k)
        return k

    yield make
    for k in started:
        k.shutdown()


@pytest.fixture
def kernel_factory(tmp_path):
    started = []

    def make(extra_env: dict[str, str] | None = None) -> Kernel:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_SECURELLM", "PYTEST"))}
        env["IPYTHONDIR"] = str(tmp_path / "ipython")
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        env.update(extra_env or {})
        k = Kernel(env, str(tmp_path))
        started.append(k)
        return k

    yield make
    for k in started:
        k.shutdown()
