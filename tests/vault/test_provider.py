"""The stand-in OpenAI-compatible provider: real wire format, checked with litellm and raw HTTP."""
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from jupyter_securellm.testing.pytest_plugin import new_provider_key

MSG = [{"role": "user", "content": "hello big world"}]


@pytest.fixture(scope="module")
def litellm():
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm as _litellm

    _litellm.suppress_debug_info = True
    return _litellm


def post(provider, body, key=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", provider.port, timeout=10)
    h = {"Content-Type": "application/json", "Authorization": f"Bearer {key or provider.key}", **(headers or {})}
    conn.request("POST", "/v1/chat/completions", json.dumps(body), h)
    return conn, conn.getresponse()


def test_litellm_non_stream(litellm, provider):
    r = litellm.completion(model="openai/gpt-4o-mini", api_base=provider.url + "/v1", api_key=provider.key,
                           messages=MSG)
    assert r.choices[0].message.content == "echo: hello big world"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (3, 4, 7)
    [req] = provider.requests
    assert req.auth_ok and req.path == "/v1/chat/completions" and req.body["messages"] == MSG
    assert provider.key not in json.dumps(req.headers) and req.headers["authorization"] == "<redacted>"


def test_litellm_stream_with_usage(litellm, provider):
    stream = litellm.completion(model="openai/gpt-4o-mini", api_base=provider.url + "/v1", api_key=provider.key,
                                messages=MSG, stream=True, stream_options={"include_usage": True})
    parts, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        usage = getattr(chunk, "usage", None) or usage
    assert "".join(parts) == "echo: hello big world"
    assert len(parts) == 4                       # one chunk per word
    assert usage.completion_tokens == 4 and usage.prompt_tokens == 3
    assert provider.requests[0].body["stream"] is True


def test_litellm_wrong_key_is_401_without_echoing_it(litellm, provider):
    wrong = new_provider_key()
    with pytest.raises(litellm.AuthenticationError) as ei:
        litellm.completion(model="openai/gpt-4o-mini", api_base=provider.url + "/v1", api_key=wrong,
                           messages=MSG)
    assert wrong not in str(ei.value) and provider.key not in str(ei.value)
    assert [r.auth_ok for r in provider.requests] == [False]


def test_key_rotation_old_key_refused(provider):
    old = provider.key
    provider.key = new_provider_key()
    conn, r = post(provider, {"model": "m", "messages": MSG}, key=old)
    body = json.loads(r.read())
    assert r.status == 401 and body["error"]["code"] == "invalid_api_key"
    assert body["error"]["type"] == "invalid_request_error"
    conn, r = post(provider, {"model": "m", "messages": MSG})
    assert r.status == 200


def test_raw_sse_wire_format(provider):
    conn, r = post(provider, {"model": "m", "messages": MSG, "stream": True,
                              "stream_options": {"include_usage": True}})
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
    events = [e for e in r.read().decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 7
    assert all(c["usage"] is None for c in chunks[:-1])


@pytest.mark.parametrize("how", ["attribute", "prompt", "header"])
@pytest.mark.parametrize("status,code", [(429, "rate_limit_exceeded"), (500, None)])
def test_forced_errors(provider, how, status, code):
    msgs, headers = MSG, None
    if how == "attribute":
        provider.fail_status, provider.fail_count = status, 1
    elif how == "prompt":
        msgs = [{"role": "user", "content": f"hi [[provider:{status}]]"}]
    else:
        headers = {"X-Test-Provider": str(status)}
    conn, r = post(provider, {"model": "m", "messages": msgs}, headers=headers)
    assert r.status == status and json.loads(r.read())["error"]["code"] == code
    conn, r = post(provider, {"model": "m", "messages": MSG})
    assert r.status == 200   # the knob was for one request only


def test_slow_tokens(provider):
    provider.chunk_delay = 0.1
    t = time.monotonic()
    conn, r = post(provider, {"model": "m", "messages": MSG, "stream": True})
    r.read()
    assert time.monotonic() - t >= 0.4   # 4 words x 0.1 s


def test_broken_stream_closes_mid_stream(provider):
    conn, r = post(provider, {"model": "m", "messages": [{"role": "user", "content": "a b c d e [[provider:break=2]]"}],
                              "stream": True})
    with pytest.raises(http.client.IncompleteRead) as ei:
        r.read()
    assert b"[DONE]" not in ei.value.partial and b'"content": "echo:"' in ei.value.partial


def test_models_endpoint_and_unknown_path(provider):
    req = urllib.request.Request(provider.url + "/v1/models", headers={"Authorization": f"Bearer {provider.key}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        data = json.load(r)
    assert data["object"] == "list" and "gpt-4o-mini" in [m["id"] for m in data["data"]]
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(provider.url + "/v1/models", timeout=5)
    assert ei.value.code == 401


def test_cli_reads_key_from_file_and_follows_rotation(tmp_path):
    from jupyter_securellm.testing.openbao import free_port

    key = new_provider_key()
    key_file = tmp_path / "key"
    key_file.write_text(key + "\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_securellm.testing.provider", "--host", "127.0.0.1",
                             "--port", str(port), "--key-file", str(key_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = proc.stdout.readline()
        assert "Stand-in" in banner and "NOT a real LLM" in banner and key not in banner
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            assert key.encode() not in f.read()

        def call(k):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {k}"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        assert call(key) == 200
        new = new_provider_key()
        key_file.write_text(new)
        os.utime(key_file, ns=(time.time_ns(), time.time_ns() + 10**9))  # a distinct mtime
        assert call(key) == 401 and call(new) == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_leak_key_split_across_chunks(provider):
    conn, r = post(provider, {"model": "m", "stream": True,
                              "messages": [{"role": "user", "content": "hi [[provider:leak_key]] [[provider:chars=7]]"}]})
    events = [e for e in r.read().decode().split("\n\n") if e and e != "data: [DONE]"]
    pieces = [json.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in events]
    assert "".join(pieces) == "echo: hi key=" + provider.key
    assert all(len(p) <= 7 for p in pieces) and not any(provider.key in p for p in pieces)
    provider.leak_key = True
    conn, r = post(provider, {"model": "m", "messages": MSG})
    assert json.loads(r.read())["choices"][0]["message"]["content"].endswith("key=" + provider.key)
