"""The Jupyter server killed with SIGKILL and started again while its kernel's old capability token is
still held (by the orphaned kernel, or whatever copied it): the new server never issued that token, so
the broker refuses it with a clear error, and the token appears nowhere in the new server's log.

ipykernel's parent poller ends a kernel soon after its server dies, so the old token is replayed from
the test process, exactly as the kernel would send it (same URL, same header)."""
import json
import os
import signal
import urllib.error
import urllib.request

import pytest

from jupyter_securellm.testing.kernels import Kernel, ServerKernel, running_demo


@pytest.fixture
def stack(tmp_path):
    with running_demo(tmp_path / "stack", quiet=True) as s:
        yield s


def replay(url, token):
    req = urllib.request.Request(url + "/models", headers={"X-SecureLLM-Token": token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def broker_from(kernel):
    out = Kernel.stream_text(kernel.run("print(json.dumps(_broker('models')))"))
    return json.loads(out)


def test_orphaned_kernel_token_dies_with_the_killed_server(stack, kernel_call):
    kernel = ServerKernel(stack)
    pid = None
    try:
        kernel.run(kernel_call)  # defines _broker(path)
        pid, url, token = Kernel.stream_text(kernel.run("print(os.getpid(), os.environ['JUPYTER_SECURELLM_URL'], "
                                                        "os.environ['JUPYTER_SECURELLM_KERNEL_TOKEN'])")).split()
        assert broker_from(kernel)[0] == 200  # the token works while its server lives
        assert replay(url, token)[0] == 200  # and works the same from outside the kernel

        old = stack.jupyter
        os.kill(old.pid, signal.SIGKILL)  # the server only: its kernel lives on as an orphan
        old.wait(timeout=30)
        stack.procs.remove(old)
        stack.start_jupyter()  # same port, same config: the kernel's URL now reaches a new server

        code, raw = replay(url, token)
        assert code == 401, raw
        err = json.loads(raw)["error"]
        assert err["type"] == "unauthorized", err
        assert "token" in err["message"].lower(), err
        assert token not in raw
        log = (stack.workdir / "jupyter.log").read_text(errors="replace")
        assert token not in log and "Traceback" not in log
    finally:
        kernel.km = None  # the new server does not know this kernel: no REST shutdown
        kernel.kc.stop_channels()
        if pid is not None:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
