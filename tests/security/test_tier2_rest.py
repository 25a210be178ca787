"""Tier 2: code in the kernel (same Unix user) attacks the REST surface.

Every attack runs inside a real kernel started by a real `jupyter server` with the extension, and
writes everything it got ("loot") to a file, so the kernel's own output redaction cannot hide a
leak from the test. The provider key lives only in OpenBao; the assertion is that it (or an
encoding of it) is in no loot.
"""
from __future__ import annotations

import json

import pytest


# Runs in the kernel: find the server through its runtime file, as malware would.
_RECON = r'''
import glob, json, os, urllib.request, urllib.error
from jupyter_core.paths import jupyter_runtime_dir
_rt = sorted(glob.glob(os.path.join(jupyter_runtime_dir(), "jpserver-*.json")))
_srv = json.load(open(_rt[-1]))
BASE, JTOKEN, SPID = _srv["url"], _srv["token"], _srv["pid"]
KTOKEN = os.environ.get("JUPYTER_SECURELLM_KERNEL_TOKEN", "")
LOOT = []
def req(method, path, body=None, headers=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    r = urllib.request.Request(BASE.rstrip("/") + "/" + path.lstrip("/"), data=data, method=method,
                               headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            out = resp.status, resp.read().decode("utf-8", "replace"), dict(resp.headers)
    except urllib.error.HTTPError as e:
        out = e.code, e.read().decode("utf-8", "replace"), dict(e.headers)
    except Exception as e:
        out = -1, repr(e), {}
    LOOT.append({"req": [method, path], "status": out[0], "body": out[1], "headers": out[2]})
    return out[0], out[1]
J = {"Authorization": "token " + JTOKEN, "Content-Type": "application/json"}
K = {"X-SecureLLM-Token": KTOKEN, "Content-Type": "application/json"}
def dump(path):
    with open(path, "w") as f:
        json.dump(LOOT, f)
'''

PROVIDER_PATHS = [
    "llm/openai", "/llm/openai", "llm/openai/", " llm/openai ", "llm//openai", "llm/./openai",
    "db/../llm/openai", "db/%2e%2e/llm/openai", "db/%2E%2E/llm/openai", "db/..%2fllm/openai",
    "db/..%2Fllm/openai", "db/.%2e/llm/openai", "db/x/../../llm/openai", "db/..\\llm\\openai",
    "db/../../secret/data/llm/openai", "secret/data/llm/openai", "data/llm/openai", "LLM/openai",
    "llm/openai\u0000", "db/\u2025/llm/openai", "db/\uff0e\uff0e/llm/openai", "llm/{user}/openai",
    "{user}/../llm/openai", "llm/*", "llm/openai?version=1", "llm/openai#x", "db/?/../../llm/openai",
    "db/*/../llm/openai", "db/%00/../llm/openai", "db/\t../llm/openai", "db/..;/llm/openai",
    "llm%2fopenai", "db%2f..%2fllm%2fopenai",
]


def test_runtime_file_token_against_every_endpoint(stack, kernel, tmp_path, rt):
    """jpserver-*.json token + the kernel token against every broker and Jupyter endpoint."""
    loot = tmp_path / "loot.json"
    paths = json.dumps(PROVIDER_PATHS)
    code = _RECON + f'''
for H in (J, K):
    for p in ("jupyter-securellm/v1/status", "jupyter-securellm/v1/models", "jupyter-securellm/v1/",
              "jupyter-securellm/v1/secrets", "jupyter-securellm/v1/chat/completions"):
        req("GET", p, headers=H)
    for path in {paths}:
        for key in ("api_key", "API_KEY", "*", ""):
            req("POST", "jupyter-securellm/v1/secrets/get", {{"path": path, "key": key}}, headers=H)
    req("POST", "jupyter-securellm/v1/secrets/get", {{"path": ["llm", "openai"], "key": "api_key"}}, headers=H)
    req("POST", "jupyter-securellm/v1/secrets/get", {{"path": "db/warehouse", "key": "password"}}, headers=H)
# URL-encoded / alternative routes to the same handlers
for p in ("jupyter-securellm/v1/secrets%2Fget", "jupyter-securellm//v1/secrets/get", "jupyter-securellm/v1/./secrets/get",
          "jupyter-securellm/v1/secrets/get/", "JUPYTER-SECURELLM/v1/secrets/get"):
    req("POST", p, {{"path": "llm/openai", "key": "api_key"}}, headers=J)
# Jupyter's own REST API with the server token
for p in ("api", "api/status", "api/me", "api/kernels", "api/sessions", "api/kernelspecs", "api/terminals",
          "api/config/notebook", "api/config/tree", "api/config/common", "api/config/jupyter_securellm",
          "api/config/SecureLLM", "api/config/../../jupyter_server_config", "api/contents?content=1",
          "api/contents/../jupyter_server_config.py", "api/contents/..%2Fjupyter_server_config.py",
          "api/contents/..%2Fapprole-secret-id", "api/contents/..%2Fjupyter.log", "api/extensions",
          "api/events", "api/spec.yaml", "api/nbconvert", "api/security/csp-report", "tree", "login", "logout"):
    req("GET", p, headers=J)
_seen = set()
def walk(path):
    st, body = req("GET", "api/contents/" + path + "?content=1", headers=J)
    try:
        m = json.loads(body)
    except Exception:
        return
    for c in (m.get("content") or []) if m.get("type") == "directory" else []:
        if c["path"] not in _seen:
            _seen.add(c["path"]); walk(c["path"])
walk("")
dump({str(loot)!r})
ok_status = [x["status"] for x in LOOT if x["req"][1] == "jupyter-securellm/v1/status"]
user_secret = [x["status"] for x in LOOT if '"db/warehouse"' in json.dumps(x) or x["req"][1].endswith("secrets/get")]
print(json.dumps({{"n": len(LOOT), "status": ok_status}}))
'''
    text, msgs = rt.run_py(kernel, code, timeout=240)
    info = rt.last_json(msgs)
    data = json.loads(loot.read_text())
    # the attack really reached the broker with both tokens (a test that can fail)
    assert info["status"] == [200, 200], info
    provider_reads = [x for x in data if x["req"][1] == "jupyter-securellm/v1/secrets/get"]
    assert len(provider_reads) > 2 * 4 * len(PROVIDER_PATHS)
    # only the control read (db/warehouse, allowed by user_secret_paths) may be served, once per token
    served = [x for x in provider_reads if x["status"] == 200]
    assert len(served) == 2 and all(stack.db_password in x["body"] for x in served), \
        [x["body"][:80] for x in served]
    rt.assert_no_secret(json.dumps(data), stack.provider_key, "REST answers seen by the kernel")
    rt.assert_no_secret(text, stack.provider_key, "kernel output")


# Request fields that would move the key to another host or expose it.
def _egress_bodies(att: str, prov_port: int) -> list[dict]:
    base = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
    evil = f"http://127.0.0.1:{att}/v1"
    variants = [
        {"api_base": evil}, {"base_url": evil}, {"api_base": f"http://localhost:{att}/v1"},
        {"extra_headers": {"X-Forward": "1"}}, {"headers": {"Host": f"127.0.0.1:{att}"}},
        {"custom_llm_provider": "openai", "api_base": evil}, {"api_key": "mine"},
        {"model": f"openai/gpt-4o-mini"}, {"model": evil}, {"model": f"openai/{evil}"},
        {"api_base": f"http://127.0.0.1:{prov_port}@127.0.0.1:{att}/v1"},
        {"api_base": f"http://u@127.0.0.1:{prov_port}/v1"},
        {"api_base": f"http://127.0.0.1:{prov_port}\\@127.0.0.1:{att}/v1"},
        {"api_base": f"http://127.0.0.1:{att}/v1#127.0.0.1:{prov_port}"},
        {"api_base": f"http://127.0.0.1:{att}/v1?127.0.0.1:{prov_port}"},
        {"api_base": f"http://127.0.0.1:{prov_port}.127.0.0.1:{att}/v1"},
        {"api_base": f"http://0x7f000001:{att}/v1"}, {"api_base": f"http://[::ffff:127.0.0.1]:{att}/v1"},
        {"api_base": f"http://127.0.0.1:{prov_port}/v1", "base_url": evil},
        {"api_base": f"HTTP://127.0.0.1:{att}/v1"}, {"api_base": f"//127.0.0.1:{att}/v1"},
        {"api_base": f"127.0.0.1:{att}"}, {"api_base": f"http://127.0.0.1:{prov_port}:{att}/v1"},
        {"api_base": f"http://127.0.0.1:{prov_port}/v1/../../@127.0.0.1:{att}"},
        {"api_base": f"http://127.0.0.1:{prov_port}%40127.0.0.1:{att}/v1"},
        {"api_version": "x", "api_base": evil}, {"callbacks": ["x"]}, {"success_callback": ["x"]},
        {"mock_response": "x"}, {"metadata": {"x": 1}}, {"extra_body": {"api_base": evil}},
        {"litellm_params": {"api_base": evil}}, {"proxy": evil}, {"http_client": evil},
        {"user": evil}, {"stream_options": {"include_usage": True, "api_base": evil}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"api_base": evil}}}]},
    ]
    out = []
    for v in variants:
        for stream in (False, True):
            out.append(dict(base, **v, stream=stream))
    return out


def test_broker_never_sends_the_key_elsewhere(stack, kernel, attacker, tmp_path, rt):
    loot = tmp_path / "loot.json"
    bodies = _egress_bodies(attacker.port, stack.provider.port)
    code = _RECON + f'''
for b in json.loads({json.dumps(json.dumps(bodies))}):
    req("POST", "jupyter-securellm/v1/chat/completions", b, headers=K)
    req("POST", "jupyter-securellm/v1/chat/completions", b, headers=J)
req("POST", "jupyter-securellm/v1/chat/completions", {{"model": "demo", "messages": [{{"role": "user", "content": "ok"}}]}}, headers=K)
dump({str(loot)!r})
print(json.dumps([x["status"] for x in LOOT]))
'''
    text, msgs = rt.run_py(kernel, code, timeout=240)
    statuses = rt.last_json(msgs)
    assert statuses[-1] == 200, "control: a normal call through the broker failed"
    assert attacker.requests == [], f"the attacker's host received {len(attacker.requests)} request(s)"
    data = json.loads(loot.read_text())
    rt.assert_no_secret(json.dumps(data), stack.provider_key, "answers to egress attempts")
    # every call with a different host or a forbidden field was refused before the provider was called
    passed = sorted({json.dumps({k: v for k, v in b.items() if k not in ("messages", "stream")})
                     for b, s in zip([b for b in bodies for _ in (0, 1)], statuses[:-1]) if s < 400})
    # the only accepted variants carry the attacker URL as inert data to the configured provider; an unknown
    # `stream_options` key (where litellm once looked for an endpoint) is refused by the strict request schema
    assert len(passed) == 2 and all(('"user"' in p or '"tools"' in p) for p in passed), passed
    refused = [s for b, s in zip([b for b in bodies for _ in (0, 1)], statuses[:-1]) if "stream_options" in b]
    assert refused and all(s == 400 for s in refused), refused


def test_no_token_no_service(stack, kernel, tmp_path, rt):
    """Without the runtime-file token or a kernel token (or with a forged one) nothing answers,
    terminals included (their websocket authenticates on its own)."""
    loot = tmp_path / "noauth.json"
    code = _RECON + f'''
forged = {{"X-SecureLLM-Token": "x" * 43, "Content-Type": "application/json"}}
for H in ({{}}, forged, {{"Authorization": "token " + "y" * 48}}):
    for p in ("jupyter-securellm/v1/status", "jupyter-securellm/v1/models", "api/terminals", "api/kernels", "api/contents"):
        req("GET", p, headers=H)
    req("POST", "jupyter-securellm/v1/secrets/get", {{"path": "db/warehouse", "key": "password"}}, headers=H)
    req("POST", "jupyter-securellm/v1/chat/completions", {{"model": "demo", "messages": [{{"role": "user", "content": "x"}}]}}, headers=H)
    req("POST", "api/terminals", {{}}, headers=H)
import asyncio, threading
from tornado.websocket import websocket_connect
res = {{}}
async def ws():
    try:
        c = await websocket_connect(BASE.replace("http", "ws") + "terminals/websocket/1")
        res["ws"] = "open"; c.close()
    except Exception as e:
        res["ws"] = type(e).__name__ + " " + str(getattr(e, "code", ""))
t = threading.Thread(target=lambda: asyncio.run(ws())); t.start(); t.join(30)
LOOT.append(res)
dump({str(loot)!r})
print(json.dumps([x.get("status") for x in LOOT[:-1]] + [res.get("ws")]))
'''
    _, msgs = rt.run_py(kernel, code, timeout=120)
    got = rt.last_json(msgs)
    assert all(s in (401, 403) for s in got[:-1]), got
    assert got[-1] != "open" and ("403" in got[-1] or "401" in got[-1] or "404" in got[-1]), got[-1]
    rt.assert_no_secret(loot.read_text(), stack.db_password, "answers without a token")
