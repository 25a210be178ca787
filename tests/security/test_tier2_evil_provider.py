"""Tier 2: an allowlisted but hostile provider (or a proxy in front of it) streams the Bearer key
back in answer fields other than `content`, split over many chunks.

The broker redacts streamed `delta.content` with a StreamRedactor (a key split across chunks is
caught) but every other string of a chunk only per chunk, so a key cut into pieces in
`tool_calls[].function.arguments` (or `reasoning_content`) reaches the caller whole once the
caller joins the pieces, which is exactly what an OpenAI client does. Uses the in-process
`jp_serverapp` stack of tests/server (real OpenBao, real broker); the hostile provider is the
allowlisted host and echoes whatever key the broker sent it.
"""
from __future__ import annotations

import json
import pathlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture
def jp_server_config(securellm_server_config):  # the in-process broker server (testing/server_fixtures.py)
    return securellm_server_config

PIECE = 4


class _Evil(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        key = self.headers.get("Authorization", "")[7:]
        self.server.seen.append(bool(key))
        mode = body["messages"][-1]["content"]
        text = f"the header was {key} ok"
        pieces = [text[i:i + PIECE] for i in range(0, len(text), PIECE)]

        def delta(piece, first=False):
            if mode == "tool_args":
                call = {"index": 0, "function": {"arguments": piece}}
                if first:
                    call.update(id="call_1", type="function", function={"name": "f", "arguments": piece})
                return {"role": "assistant", "tool_calls": [call]} if first else {"tool_calls": [call]}
            return {mode: piece}

        if mode.startswith("error"):  # an error body (and a header) quoting the key, as some proxies do
            status = int(mode[5:])
            data = json.dumps({"error": {"message": f"Incorrect API key provided: {key}", "type": "x",
                                         "code": key}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Echo-Authorization", f"Bearer {key}")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if not body.get("stream"):
            msg = {"role": "assistant", "content": None}
            if mode == "tool_args":
                msg["tool_calls"] = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": text}}]
            else:
                msg[mode] = text
            data = json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                               "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for i, p in enumerate(pieces):
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [{"index": 0, "delta": delta(p, i == 0), "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        end = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if mode == "tool_args" else "stop"}]}
        self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def evil():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Evil)
    srv.seen = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def securellm_config(openbao, server_token_file, evil, vault_provider_key):
    port = evil.server_address[1]
    return {"vault_url": openbao.url, "vault_auth_method": "token", "vault_token_path": str(server_token_file),
            "models": {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai", "secret_key": "api_key",
                               "api_base": f"http://127.0.0.1:{port}/v1", "allow_http": True}},
            "allowed_hosts": [f"127.0.0.1:{port}"], "preload_litellm": False}


def _joined(raw: str) -> str:
    """Every string field of every chunk, concatenated per field path (what a client reassembles)."""
    fields: dict[str, list[str]] = {}

    def walk(o, path):
        if isinstance(o, str):
            fields.setdefault(path, []).append(o)
        elif isinstance(o, dict):
            for k, v in o.items():
                walk(v, f"{path}.{k}")
        elif isinstance(o, list):
            for v in o:
                walk(v, path)

    for line in raw.splitlines():
        if line.startswith("data: {"):
            walk(json.loads(line[6:]), "")
    return "\n".join("".join(v) for v in fields.values())


@pytest.mark.parametrize("mode,stream", [
    ("content", True), ("content", False), ("tool_args", False), ("reasoning_content", False),
    ("tool_args", True), ("reasoning_content", True),
])
async def test_hostile_provider_split_key_in_other_fields(broker_api, evil, vault_provider_key, rt, mode, stream):
    status, _, raw = await broker_api("chat/completions", {"model": "gpt", "stream": stream,
                                                          "messages": [{"role": "user", "content": mode}]})
    assert status == 200 and evil.seen == [True], (status, raw[:300])
    text = raw + "\n" + (_joined(raw) if stream else json.dumps(json.loads(raw)))
    assert "the header was" in text.replace("\n", "") or "the h" in text  # the answer came through
    rt.assert_no_secret(text, vault_provider_key, f"{mode} (stream={stream}) from a hostile provider")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 500, 503])
@pytest.mark.parametrize("stream", [False, True])
async def test_error_bodies_quoting_the_key_reach_neither_caller_nor_log(broker_api, evil, vault_provider_key, rt,
                                                                        server_log, status, stream):
    code, _, raw = await broker_api("chat/completions", {"model": "gpt", "stream": stream,
                                                        "messages": [{"role": "user", "content": f"error{status}"}]})
    assert code >= 400 and evil.seen and all(evil.seen), (code, raw[:200])
    assert '"error"' in raw
    rt.assert_no_secret(raw, vault_provider_key, f"the error answer to a provider {status}")
    rt.assert_no_secret(server_log(), vault_provider_key, f"the server log after a provider {status}")
