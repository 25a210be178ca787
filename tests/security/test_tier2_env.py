"""Tier 2: secrets that sit in the *server's* environment (an admin's mistake) and the ways a kernel
could inherit them: its own launch env, a fork, a subprocess, and a terminal it opens through
the REST API with the token from jpserver-*.json.
"""
from __future__ import annotations

import json
import os

import pytest

from jupyter_securellm.detect import fake_secret
from jupyter_securellm.testing.kernels import ServerKernel


@pytest.fixture(scope="module")
def dirty_stack(tmp_path_factory):
    """A stack whose Jupyter server was started with secrets in its environment."""
    from jupyter_securellm.demo import DemoStack, free_port

    planted = {"OPENAI_API_KEY": fake_secret("openai-api-key"),
               "WAREHOUSE_PASSWORD": "pw-" + os.urandom(12).hex(),
               "INNOCENT_LOOKING": fake_secret("github-token"),  # caught by its value's shape
               "LEGACY_SETTING": fake_secret("vault-token")}
    saved = dict(os.environ)
    os.environ.update(planted)
    try:
        s = DemoStack(tmp_path_factory.mktemp("dirty"), app="server", port=free_port())
        s.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    s.planted = planted
    yield s
    s.stop()


@pytest.fixture
def dirty_kernel(dirty_stack):
    k = ServerKernel(dirty_stack)
    yield k
    k.shutdown()


_INHERIT = r'''
import json, os, subprocess
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, json.dumps(dict(os.environ)).encode()[:60000]); os._exit(0)
os.close(w); forked = os.read(r, 65536).decode(); os.waitpid(pid, 0)
json.dump({"env": dict(os.environ), "fork": forked,
           "sub": subprocess.run(["env"], capture_output=True, text=True).stdout}, open(LOOT, "w"))
print("{}")
'''

_TERMINAL = r'''
import asyncio, glob, json, os, urllib.request
from jupyter_core.paths import jupyter_runtime_dir
from tornado.websocket import websocket_connect
srv = json.load(open(sorted(glob.glob(os.path.join(jupyter_runtime_dir(), "jpserver-*.json")))[-1]))
H = {"Authorization": "token " + srv["token"], "Content-Type": "application/json"}
req = urllib.request.Request(srv["url"] + "api/terminals", data=b"{}", method="POST", headers=H)
name = json.load(urllib.request.urlopen(req, timeout=30))["name"]
async def grab():
    ws = await websocket_connect(srv["url"].replace("http", "ws") + f"terminals/websocket/{name}?token=" + srv["token"])
    await ws.write_message(json.dumps(["stdin", "env; echo __END__\r"]))
    out = ""
    while "__END__\r\n" not in out.replace("echo __END__", ""):
        m = await asyncio.wait_for(ws.read_message(), 20)
        if m is None:
            break
        msg = json.loads(m)
        if msg[0] == "stdout":
            out += msg[1]
    ws.close()
    return out
out = asyncio.run(grab()) if False else None
'''


def test_kernel_fork_and_subprocess_inherit_no_server_secret(dirty_stack, dirty_kernel, tmp_path, rt):
    loot = tmp_path / "inherit.json"
    rt.run_py(dirty_kernel, f"LOOT = {str(loot)!r}\n" + _INHERIT)
    data = json.loads(loot.read_text())
    assert "JUPYTER_SECURELLM_KERNEL_TOKEN" in data["env"]  # the attack ran in a broker kernel
    blob = json.dumps(data)
    for name, value in dirty_stack.planted.items():
        rt.assert_no_secret(blob, value, f"kernel/fork/subprocess env ({name})")


def test_terminal_opened_by_the_kernel_inherits_no_server_secret(dirty_stack, dirty_kernel, tmp_path, rt):
    loot = tmp_path / "term.json"
    code = _TERMINAL.replace("out = asyncio.run(grab()) if False else None", "") + f'''
import threading
res = {{}}
t = threading.Thread(target=lambda: res.update(out=asyncio.run(grab())))  # the kernel already runs a loop
t.start(); t.join(60)
json.dump(res, open({str(loot)!r}, "w"))
print("{{}}")
'''
    text, msgs = rt.run_py(dirty_kernel, code, timeout=120)
    out = json.loads(loot.read_text()).get("out", "")
    assert "PATH=" in out, f"the terminal attack did not run: {rt.strip_ansi(text)[-300:]}"
    for name, value in dirty_stack.planted.items():
        rt.assert_no_secret(out, value, f"a terminal's env ({name})")
