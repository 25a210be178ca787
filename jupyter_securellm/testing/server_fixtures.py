"""The broker inside a real in-process Jupyter server (pytest-jupyter's `jp_serverapp`), backed by
the session OpenBao and the stand-in provider. A pytest plugin (registered in tests/conftest.py).

A test folder or module that wants this server says so by overriding pytest-jupyter's config::

    @pytest.fixture
    def jp_server_config(securellm_server_config):
        return securellm_server_config

and adjusts `securellm_config` (a dict of `SecureLLM` traits) by overriding it.
Keys are generated at run time (never literals).
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets as pysecrets

import pytest

from jupyter_securellm.detect import fake_secret

from .provider import FakeProvider
from .pytest_plugin import BROKER_POLICY

__all__ = ["BROKER_POLICY", "KernelRunner"]


@pytest.fixture
def server_token_file(openbao, tmp_path):
    """A non-root Vault token for the server, in a file (vault_auth_method='token')."""
    tok = openbao.create_token([BROKER_POLICY], ttl="1h")["client_token"]
    p = tmp_path / "vault-token"
    p.write_text(tok)
    p.chmod(0o600)
    return p


@pytest.fixture
def vault_provider_key(openbao, standin_key):
    """The stand-in provider's key, stored in OpenBao at `llm/openai` (field `api_key`), where the
    broker's `gpt` model reads it: a 200 from `provider` proves the key went Vault -> server -> provider."""
    openbao.write_secret("llm/openai", {"api_key": standin_key})
    return standin_key


@pytest.fixture
def other_host():
    """A second stand-in on another port that is NOT allowlisted: it must receive nothing."""
    with FakeProvider(fake_secret("openai-api-key")) as p:
        yield p


@pytest.fixture
def db_password(openbao):
    value = pysecrets.token_urlsafe(18)
    openbao.write_secret("db/analytics", {"password": value})
    return value


@pytest.fixture
def securellm_config(openbao, server_token_file, provider, vault_provider_key):
    """The `SecureLLM` traits of a broker that reads `vault_provider_key` and calls `provider`."""
    return {
        "vault_url": openbao.url,
        "vault_auth_method": "token",
        "vault_token_path": str(server_token_file),
        "models": {
            "gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai", "secret_key": "api_key",
                    "api_base": provider.url + "/v1", "allow_http": True},
        },
        "allowed_hosts": [f"127.0.0.1:{provider.port}"],
        "user_secret_paths": ["db/*"],
        "preload_litellm": False,
    }


@pytest.fixture
def securellm_server_config(securellm_config):
    """A `jp_server_config` with the extension on, authentication required and `securellm_config`."""
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_securellm": True},
                      "allow_unauthenticated_access": False},
        "SecureLLM": securellm_config,
    }


@pytest.fixture
def server_log(caplog, jp_logging_stream):
    """Everything the server logged (root capture + the ServerApp stream)."""
    caplog.set_level(logging.DEBUG)

    def text():
        return caplog.text + "\n" + jp_logging_stream.getvalue()

    return text


@pytest.fixture
def broker_api(jp_fetch):
    """POST/GET helpers on /jupyter-securellm/v1 returning (status, parsed body, raw text)."""

    async def call(path, body=None, *, method=None, headers=None, auth=True, request_timeout=20):
        hdrs = dict(headers or {})
        if not auth:
            hdrs["Authorization"] = ""
        kw = {"method": method or ("POST" if body is not None else "GET"), "headers": hdrs,
              "raise_error": False, "request_timeout": request_timeout}
        if body is not None:
            kw["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        resp = await jp_fetch("jupyter-securellm", "v1", *path.split("/"), **kw)
        raw = resp.body.decode("utf-8", "replace")
        try:
            parsed = json.loads(raw) if raw and not raw.startswith("data:") else None
        except ValueError:
            parsed = None
        return resp.code, parsed, raw

    return call


@pytest.fixture
def chat(broker_api):
    """`broker_api` on chat/completions, with room for the first call's litellm imports on a loaded machine."""
    async def post(body):
        return await broker_api("chat/completions", body, request_timeout=120)

    return post


async def until(predicate, timeout: float) -> bool:
    """Poll `predicate` every 50 ms: True once it holds, False if `timeout` seconds pass first."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def audit_records(path, type: str | None = None) -> list[dict]:  # noqa: A002 - the records' own field name
    """The records of an audit log (JSON lines), only those of `type` if given; [] while the file is absent."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return records if type is None else [r for r in records if r.get("type") == type]


def sse_text(raw: str) -> str:
    """The answer text of an SSE chat stream (every choice's delta content, in order)."""
    out = []
    for line in raw.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            try:
                obj = json.loads(line[6:])
            except ValueError:
                continue
            for ch in obj.get("choices") or []:
                out.append((ch.get("delta") or {}).get("content") or "")
    return "".join(out)


class KernelRunner:
    """Start kernels through the REST API and run code in them (real ipykernel processes)."""

    def __init__(self, jp_fetch, serverapp):
        self.fetch = jp_fetch
        self.app = serverapp
        self.clients = {}

    async def start(self) -> str:
        r = await self.fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
        return json.loads(r.body)["id"]

    async def run(self, kernel_id: str, code: str, timeout: float = 60) -> str:
        kc = self.clients.get(kernel_id)
        if kc is None:
            kc = self.app.kernel_manager.get_kernel(kernel_id).client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=timeout)
            self.clients[kernel_id] = kc
        msg_id = kc.execute(code)
        out = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            msg = await kc.get_iopub_msg(timeout=max(left, 0.1))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            t, c = msg["msg_type"], msg["content"]
            if t == "stream":
                out.append(c["text"])
            elif t == "error":
                out.append("\n".join(c["traceback"]))
            elif t == "status" and c["execution_state"] == "idle":
                return "".join(out)

    def forget(self, kernel_id):
        kc = self.clients.pop(kernel_id, None)
        if kc is not None:
            kc.stop_channels()

    async def shutdown(self, kernel_id):
        self.forget(kernel_id)
        await self.fetch("api", "kernels", kernel_id, method="DELETE")

    def close(self):
        for k in list(self.clients):
            self.forget(k)


@pytest.fixture
def kernels(jp_fetch, jp_serverapp):
    """Kernels are shut down by the server fixture's own cleanup."""
    runner = KernelRunner(jp_fetch, jp_serverapp)
    yield runner
    runner.close()


# Code run inside a kernel: calls the broker with only what the kernel env provides.
_KERNEL_CALL = r'''
import json, os, urllib.request, urllib.error
def _broker(path, body=None, token=None):
    url = os.environ["JUPYTER_SECURELLM_URL"] + "/" + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("X-SecureLLM-Token", token if token is not None else os.environ["JUPYTER_SECURELLM_KERNEL_TOKEN"])
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
'''


@pytest.fixture
def kernel_call():
    """Python source defining `_broker(path, body=None, token=None)` for use inside a kernel."""
    return _KERNEL_CALL
