"""Red-team fixtures: one real stack (OpenBao + stand-in provider + a real `jupyter server` process
with the extension), kernels started by that server, and an "attacker" HTTP server that must
receive nothing.

Helpers are reused from tests/kernel/conftest.py (`ServerKernel`, `encodings`) and the stack is
`jupyter_securellm.demo.DemoStack`, the same one the end-to-end tests and `make demo` start.
Secrets are generated at run time; nothing key-shaped is written to a file.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import urllib.error
import urllib.request

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pytest_jupyter.jupyter_server import *  # noqa: E402,F401,F403  (jp_serverapp, async test hooks)

from jupyter_securellm.testing.pytest_plugin import provider_key  # noqa: E402,F401  (reused fixture)
from jupyter_securellm.testing.provider import FakeProvider  # noqa: E402

_HERE = pathlib.Path(__file__).resolve().parent


def _load(rel: str, name: str):
    """Import a sibling test folder's conftest as a plain module (importlib mode has no packages)."""
    spec = importlib.util.spec_from_file_location(name, _HERE.parent / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_kernel_conftest = _load("kernel/conftest.py", "_securellm_kernel_conftest")
ServerKernel = _kernel_conftest.ServerKernel
encodings = _kernel_conftest.encodings


def secret_forms(value: str) -> dict[str, str]:
    """`encodings()` of tests/kernel plus the forms a tier-1 user produces by hand."""
    forms = encodings(value)
    forms["json-list"] = json.dumps(list(value))
    forms["py-list"] = repr(list(value))
    forms["py-list-wrapped"] = ",\n ".join(map(repr, value))
    forms["json-list-escaped"] = json.dumps(json.dumps(list(value)))[1:-1]
    forms["spaced"] = " ".join(value)
    return forms


def find_leaks(text: str, value: str) -> list[str]:
    """Names of the forms of `value` present in `text` (empty = clean)."""
    return [name for name, form in secret_forms(value).items() if form and form in text]


def assert_no_secret(text: str, value: str, where: str) -> None:
    leaks = find_leaks(text, value)
    assert not leaks, f"secret leaked into {where} as: {', '.join(leaks)}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """A real `jupyter server` (separate process, the extension on, AppRole to OpenBao) + provider."""
    from jupyter_securellm.demo import DemoStack, free_port

    s = DemoStack(tmp_path_factory.mktemp("redteam"), app="server", port=free_port())
    s.start()
    yield s
    s.stop()


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
