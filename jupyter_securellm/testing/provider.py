"""A local OpenAI-compatible HTTP server: a STAND-IN for a real LLM provider (tests and demo only).

Real providers are unreachable from test machines, so this server speaks the real wire format
instead: ``POST /v1/chat/completions`` (JSON with ``usage``, or SSE ``chat.completion.chunk``
lines, an optional usage chunk and ``data: [DONE]``) and ``GET /v1/models``. It answers 401 in
OpenAI's error JSON unless ``Authorization: Bearer <key>`` equals the CURRENT key, so a passing
test proves the key from Vault reached the provider from the server side.

Answers are deterministic: ``"echo: " + <last user message>``, streamed one word per chunk.

Knobs, as attributes (``provider.fail_status = 429``) or per request with a magic marker in the
last user message (``[[provider:429]]``, ``[[provider:500]]``, ``[[provider:slow=0.05]]``,
``[[provider:break=2]]``, ``[[provider:tail=1.5]]``) or a header ``X-Test-Provider: 429`` / ``slow=0.05`` /
``break=2``:
- ``fail_status``/``fail_count``: answer that HTTP error (429 or 500; all requests, or the next n);
- ``chunk_delay``: seconds to sleep before each streamed chunk (slow tokens);
- ``break_after``: close the connection after that many content chunks (broken stream);
- ``refuse_stream_options``: answer 400 to a request that carries ``stream_options``, as servers that do
  not know it do (older Azure API versions, some local servers);
- ``tail`` (marker ``tail=S``): wait S seconds after the finish_reason chunk (and the usage chunk)
  before ending the stream with ``data: [DONE]``, as a provider still busy at the end might;
- ``reply``: a fixed answer instead of the echo;
- ``leak_key`` (marker ``leak_key``): append `` key=<the accepted key>`` to the answer, as a
  misbehaving provider or proxy might, to test that the broker redacts answers;
- ``chunk_chars`` (marker ``chars=N``): stream N characters per chunk instead of one word, so a
  leaked key is split across chunks (tests the streaming redactor).
Note: litellm (the openai SDK) retries 429 and 5xx twice by default, so ``fail_count=1`` lets the
retry succeed and a permanent ``fail_status`` shows up as three recorded requests.
Every request is recorded in ``requests`` (method, path, lower-cased headers with the
Authorization value replaced by ``<redacted>``, parsed body, whether the key matched), so a test can also assert that a host received nothing.

Run for the demo (the key is read from a file, never from argv; the file is re-read when it
changes, so rotating the key in the file rotates it here)::

    python -m jupyter_securellm.testing.provider --host 127.0.0.1 --port 8765 --key-file key.txt
"""
from __future__ import annotations

import argparse
import hmac
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FakeProvider", "RecordedRequest", "ReplayedStream"]


class _Server(ThreadingHTTPServer):
    """socketserver listens with a backlog of 5: a burst of concurrent connects (20 streams from one
    broker) overflows it and some are reset ("Connection reset by peer"). A real provider accepts them."""

    request_queue_size = 256
    daemon_threads = True


_MARK = re.compile(r"\[\[provider:([^\]]+)\]\]")
_ERRORS = {
    401: ("Incorrect API key provided. You can find your API key at your provider's dashboard.",
          "invalid_request_error", "invalid_api_key"),
    429: ("Rate limit reached for requests (stand-in provider).", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request (stand-in provider).",
          "server_error", None),
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict
    body: object
    auth_ok: bool
    time: float = field(default_factory=time.time)
    client_port: int = 0  # the caller's source port: the same port means a reused (pooled) connection


class ReplayedStream:
    """A provider stream with the provider taken out: the chunks collected beforehand, as an async
    iterator (for the answer side alone: unit tests and the streaming profiling harness)."""

    def __init__(self, chunks):
        self._it = iter(chunks)

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return next(self._it)
        except StopIteration:
            raise StopAsyncIteration from None


class JSONPlumbing:
    """Reading a JSON request body and writing a JSON answer: shared by every stand-in's handler."""

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", "replace")

    def send_json(self, status: int, obj, extra: dict | None = None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class _Handler(JSONPlumbing, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StandInProvider/1.0"
    timeout = 30  # idle keep-alive connections go away

    @property
    def fp(self) -> "FakeProvider":
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, fmt, *args):  # quiet; requests are recorded instead
        pass

    def _error(self, status: int, message: str | None = None):
        msg, typ, code = _ERRORS.get(status, ("Error (stand-in provider).", "invalid_request_error", None))
        extra = {"Retry-After": "0"} if status == 429 else None
        self.send_json(status, {"error": {"message": message or msg, "type": typ, "param": None,
                                           "code": code}}, extra)

    def _auth_ok(self) -> bool:
        got = self.headers.get("Authorization", "")
        want = self.fp.key
        if not want or not got.startswith("Bearer "):
            return False
        return hmac.compare_digest(got[7:].encode(), want.encode())

    def _record(self, body) -> bool:
        ok = self._auth_ok()
        headers = {k.lower(): ("<redacted>" if k.lower() in ("authorization", "api-key", "x-api-key") else v)
                   for k, v in self.headers.items()}
        self.fp._record(RecordedRequest(self.command, self.path, headers, body, ok,
                                        client_port=self.client_address[1]))
        return ok

    # -- routes --
    def do_GET(self):
        ok = self._record(None)
        if self.path.rstrip("/") != "/v1/models":
            return self._error(404, f"Unknown path {self.path} (stand-in provider)")
        if not ok:
            return self._error(401)
        self.send_json(200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "stand-in"} for m in self.fp.models]})

    def do_POST(self):
        body = self.read_body()
        ok = self._record(body)
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._error(404, f"Unknown path {self.path} (stand-in provider)")
        if not ok:
            return self._error(401)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error(400, "'messages' is required (stand-in provider)")
        if self.fp.refuse_stream_options and "stream_options" in body:
            return self._error(400, "Unrecognized request argument supplied: stream_options (stand-in provider)")
        knobs = self.fp._knobs(body, self.headers)
        if knobs.get("status"):
            return self._error(knobs["status"])
        answer = self.fp.answer(body)
        if knobs.get("leak_key"):
            answer += " key=" + (self.fp.key or "")
        model = body.get("model") or "stand-in"
        if body.get("stream"):
            return self._stream(body, model, answer, knobs)
        prompt_tokens, completion_tokens = _count(body), len(answer.split())
        self.send_json(200, {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
            "created": int(time.time()), "model": model, "system_fingerprint": "fp_standin",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    def _stream(self, body, model, answer, knobs):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        cid, created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta, finish=None, choices=True, usage=None):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "system_fingerprint": "fp_standin",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                   if choices else []}
            if include_usage:
                obj["usage"] = usage
            return "data: " + json.dumps(obj) + "\n\n"

        def send(text: str):
            data = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        if knobs.get("chars"):
            n = knobs["chars"]
            pieces = [answer[i:i + n] for i in range(0, len(answer), n)]
        else:
            pieces = [w if i == 0 else " " + w for i, w in enumerate(answer.split(" "))]
        send(chunk({"role": "assistant", "content": "", "refusal": None}))
        for i, w in enumerate(pieces):
            if knobs.get("break") is not None and i >= knobs["break"]:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)  # mid-stream, no terminating chunk: a broken stream
                return
            if knobs.get("slow"):
                time.sleep(knobs["slow"])
            send(chunk({"content": w}))
        send(chunk({}, finish="stop"))
        if include_usage:
            p, c = _count(body), len(answer.split())
            send(chunk(None, choices=False, usage={"prompt_tokens": p, "completion_tokens": c,
                                                   "total_tokens": p + c}))
        if knobs.get("tail"):
            time.sleep(knobs["tail"])
        send("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _count(body) -> int:
    return sum(len(_text(m.get("content")).split()) for m in body.get("messages", []) if isinstance(m, dict))


class FakeProvider:
    """Stand-in OpenAI-compatible provider on 127.0.0.1 in a background thread."""

    def __init__(self, key: str | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 key_file: str | None = None, models=("gpt-4o-mini", "gpt-4o")):
        self._key = key
        self.key_file = key_file
        self._key_mtime = None
        self.host, self.port = host, port
        self.models = list(models)
        self.fail_status: int | None = None
        self.fail_count: int | None = None     # None: every request while fail_status is set
        self.chunk_delay: float = 0.0
        self.break_after: int | None = None
        self.reply: str | None = None
        self.leak_key: bool = False            # append " key=<the key>" to answers (answer-DLP tests)
        self.chunk_chars: int | None = None    # stream N characters per chunk instead of a word
        self.refuse_stream_options = False     # 400 for a body with stream_options
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- key --
    @property
    def key(self) -> str | None:
        if self.key_file:
            try:
                mtime = os.stat(self.key_file).st_mtime_ns
                if mtime != self._key_mtime:
                    with open(self.key_file, encoding="utf-8") as f:
                        self._key = f.read().strip()
                    self._key_mtime = mtime
            except OSError:
                self._key = None
        return self._key

    @key.setter
    def key(self, value: str) -> None:
        """Rotate: from now on only this key is accepted."""
        self._key = value

    # -- lifecycle --
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "FakeProvider":
        self._server = _Server((self.host, self.port), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="stand-in-provider",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Clear recorded requests and knobs (the key stays)."""
        with self._lock:
            self.requests.clear()
        self.fail_status = self.fail_count = self.break_after = self.reply = None
        self.chunk_delay = 0.0
        self.leak_key, self.chunk_chars = False, None
        self.refuse_stream_options = False

    # -- behaviour --
    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def answer(self, body: dict) -> str:
        if self.reply is not None:
            return self.reply
        users = [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
        last = _MARK.sub("", _text(users[-1].get("content")) if users else "").strip()
        return "echo: " + (last or "(empty)")

    def _knobs(self, body: dict, headers) -> dict:
        k: dict = {"slow": self.chunk_delay, "break": self.break_after, "leak_key": self.leak_key,
                   "chars": self.chunk_chars}
        with self._lock:
            if self.fail_status and (self.fail_count is None or self.fail_count > 0):
                k["status"] = self.fail_status
                if self.fail_count is not None:
                    self.fail_count -= 1
        users = [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
        marks = _MARK.findall(_text(users[-1].get("content")) if users else "")
        if headers.get("X-Test-Provider"):
            marks.append(headers["X-Test-Provider"])
        for m in marks:
            m = m.strip()
            if m.isdigit():
                k["status"] = int(m)
            elif m.startswith("slow="):
                k["slow"] = float(m[5:])
            elif m == "leak_key":
                k["leak_key"] = True
            elif m.startswith("chars="):
                k["chars"] = max(1, int(m[6:]))
            elif m.startswith("break="):
                k["break"] = int(m[6:])
            elif m.startswith("tail="):
                k["tail"] = float(m[5:])
        return k


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="STAND-IN for a real OpenAI-compatible LLM provider (tests and demos only).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key-file", required=True, help="file holding the accepted API key (re-read on change)")
    args = ap.parse_args(argv)
    fp = FakeProvider(host=args.host, port=args.port, key_file=args.key_file)
    if not fp.key:
        ap.error(f"--key-file {args.key_file} is missing or empty")
    fp.start()
    print(f"Stand-in OpenAI-compatible provider (NOT a real LLM) listening on {fp.url}/v1", flush=True)
    try:
        fp._thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        fp.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
