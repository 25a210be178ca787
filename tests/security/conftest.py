"""Red-team fixtures: one real stack (OpenBao + stand-in provider + a real `jupyter server` process
with the extension), kernels started by that server, and an "attacker" HTTP server that must
receive nothing.

Helpers come from `jupyter_securellm.testing` (`ServerKernel`, the leak forms) and the stack is
`jupyter_securellm.demo.DemoStack`, the same one the end-to-end tests and `make demo` start.
Secrets are generated at run time; nothing key-shaped is written to a file.
"""
from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request

import pytest

from jupyter_securellm.testing.kernels import ServerKernel, running_demo
from jupyter_securellm.testing.leaks import assert_no_secret, find_leaks, secret_forms
from jupyter_securellm.testing.provider import FakeProvider


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """A real `jupyter server` (separate process, the extension on, AppRole to OpenBao) + provider."""
    with running_demo(tmp_path_factory.mktemp("redteam")) as s:
        yield s


@pytest.fixture
def kernel(stack):
    """A fresh kernel started through the server's REST API (it gets its own capability token)."""
    started = []

    def make():
        k = ServerKernel(stack)
        started.append(k)
        return k

    k = make()
    k.make_another = make
    yield k
    for x in started:
        x.shutdown()


@pytest.fixture
def attacker():
    """A second HTTP server standing for the attacker's host: it must never receive a request."""
    with FakeProvider("attacker-" + os.urandom(8).hex()) as p:
        yield p


@pytest.fixture(autouse=True)
def _reset_provider(stack):
    yield
    if stack.provider is not None:
        stack.provider.reset()


def run_py(k, code: str, timeout: float = 90) -> tuple[str, list]:
    """Run `code` in kernel `k`; return (every message serialised, messages). Errors are allowed."""
    msgs = k.run(code, timeout=timeout, allow_error=True)
    return k.text(msgs), msgs


def last_json(msgs) -> object:
    """The JSON a cell printed on its last stdout line (attack cells report what they got that way)."""
    out = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines, f"the attack cell printed nothing; messages: {[m['msg_type'] for m in msgs]}"
    return json.loads(lines[-1])


def http(method: str, url: str, body=None, headers=None, timeout=30) -> tuple[int, str]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(s: str) -> str:
    return _ANSI.sub("", s)


@pytest.fixture(scope="session")
def rt():
    """The helpers above, as a fixture (test modules cannot import a conftest in importlib mode)."""
    import types

    return types.SimpleNamespace(assert_no_secret=assert_no_secret, find_leaks=find_leaks, last_json=last_json,
                                 run_py=run_py, http=http, strip_ansi=strip_ansi, secret_forms=secret_forms)
