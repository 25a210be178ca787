"""A stand-in OpenAI-compatible provider with the write pattern of the latency trap.

Like `http.server`-based local model servers: HTTP/1.1 keep-alive, no TCP_NODELAY, the response
headers and the body (or each SSE event) written as separate segments, so Nagle holds each later
write until the earlier one is ACKed. Against a client whose pooled connection delays its ACKs, every
call waits ~40 ms (server/transport.py). It checks that `Authorization` is exactly the key it was
given; `requests` counts calls and `auth_failures` wrong keys.

    python -m jupyter_securellm.testing.nagle --port 0 --key-file KEY
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class NagleProvider:
    def __init__(self, key: str, host: str = "127.0.0.1", port: int = 0):
        self.key = key
        self.requests = 0
        self.auth_failures = 0
        self._srv = ThreadingHTTPServer((host, port), self._handler())
        self._srv.daemon_threads = True
        self._thread = None

    @property
    def port(self) -> int:
        return self._srv.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "NagleProvider":
        self._thread = threading.Thread(target=self._srv.serve_forever, name="nagle-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _handler(self):
        owner = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the client pools the connection

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                owner.requests += 1
                if self.headers.get("Authorization") != f"Bearer {owner.key}":
                    owner.auth_failures += 1
                    self._send(401, b'{"error": {"message": "bad key", "type": "invalid_request_error"}}')
                    return
                text = "echo: " + str((body.get("messages") or [{}])[-1].get("content", ""))
                base = {"id": "chatcmpl-nagle", "created": int(time.time()), "model": body.get("model", "m")}
                if not body.get("stream"):
                    self._send(200, json.dumps(dict(base, object="chat.completion", choices=[
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                        usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})).encode())
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()  # segment 1: the headers
                words = text.split(" ")
                for i, w in enumerate(words):  # one write per event
                    delta = {"role": "assistant", "content": w} if i == 0 else {"content": " " + w}
                    self._chunk(b"data: " + json.dumps(dict(base, object="chat.completion.chunk", choices=[
                        {"index": 0, "delta": delta, "finish_reason": None}])).encode() + b"\n\n")
                self._chunk(b"data: " + json.dumps(dict(base, object="chat.completion.chunk", choices=[
                    {"index": 0, "delta": {}, "finish_reason": "stop"}],
                    usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})).encode() + b"\n\n")
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")

            def _send(self, code: int, payload: bytes):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()          # segment 1: the headers
                self.wfile.write(payload)   # segment 2: the body, held by Nagle until segment 1 is ACKed

            def _chunk(self, data: bytes):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

            def log_message(self, *a):
                pass

        return H


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key-file", required=True)
    args = ap.parse_args(argv)
    with open(args.key_file, encoding="utf-8") as f:
        key = f.read().strip()
    p = NagleProvider(key, port=args.port).start()
    print(p.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        p.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
