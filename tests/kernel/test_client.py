"""The broker client's pure parts: SSE framing, error mapping, render formats (no network)."""
from __future__ import annotations

import json

import pytest

from jupyter_securellm.kernel.client import SecureLLMError, delta_text, error_from_body, iter_chunks, iter_sse
from jupyter_securellm.kernel.magics import render


def _lines(text: str):
    return [line.encode() for line in text.splitlines(keepends=True)]


def test_sse_framing_comments_multiline_and_crlf():
    body = ": keep-alive\r\n\r\ndata: a\r\ndata: b\r\n\r\nevent: x\ndata:c\n\ndata: tail"
    assert list(iter_sse(_lines(body))) == ["a\nb", "c", "tail"]


def test_chunks_stop_at_done_and_raise_on_error_event():
    chunk = {"choices": [{"delta": {"content": "hi"}}]}
    body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\ndata: {json.dumps(chunk)}\n\n"
    assert [delta_text(c) for c in iter_chunks(_lines(body))] == ["hi"]
    err = {"error": {"type": "budget_exhausted", "message": "Budget used up; ask your admin."}}
    body = f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(err)}\n\n"
    it = iter_chunks(_lines(body))
    assert delta_text(next(it)) == "hi"
    with pytest.raises(SecureLLMError) as exc:
        next(it)
    assert exc.value.type == "budget_exhausted" and exc.value._render_traceback_() == [
        "SecureLLM (budget_exhausted): Budget used up; ask your admin."]
    with pytest.raises(SecureLLMError, match="does not understand"):
        list(iter_chunks(_lines("data: {not json\n\n")))


@pytest.mark.parametrize("status,body,etype", [
    (403, '{"error": {"type": "egress_denied", "message": "Host not allowed."}}', "egress_denied"),
    (429, "<html>busy</html>", "rate_limited"),
    (503, "", "vault_unavailable"),
    (502, '{"error": {}}', "provider_error"),
])
def test_error_mapping_always_gives_one_actionable_sentence(status, body, etype):
    err = error_from_body(status, body)
    assert err.type == etype and err.status == status
    assert err.message.endswith(".") and "\n" not in err.message


def test_render_formats():
    assert render("markdown", "**x**") == {"text/markdown": "**x**", "text/plain": "**x**"}
    code = render("code", "```python\nprint(1)\n```")
    assert code["text/markdown"] == "```python\nprint(1)\n```" and code["text/plain"] == "print(1)"
    assert render("json", '```json\n{"a": 1}\n```')["application/json"] == {"a": 1}
    assert render("json", "not json") == {"text/plain": "not json"}
    assert render("json", '{"a"', streaming=True) == {"text/plain": '{"a"'}
    assert render("html", "<b>x</b>")["text/html"] == "<b>x</b>"
    assert render("text", "x") == {"text/plain": "x"}


@pytest.mark.parametrize("status,ctype,body", [
    (200, None, b""),  # an empty answer with no content type
    (200, "text/html", b"<html>a proxy page</html>"),
    (204, None, b""),
    (200, "application/json", b'{"id": "not a completion"}'),
])
def test_a_stream_answered_with_neither_events_nor_a_completion_is_one_clear_error(status, ctype, body):
    """Error path a real broker does not produce on demand: a tiny local HTTP server answers it."""
    import http.server
    import threading

    from jupyter_securellm.kernel.client import BrokerClient

    class Odd(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            if status != 204:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 204:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Odd)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        client = BrokerClient(f"http://127.0.0.1:{srv.server_address[1]}/jupyter-securellm/v1", "t")
        with pytest.raises(SecureLLMError) as exc:
            list(client.stream({"model": "m", "messages": []}))
    finally:
        srv.shutdown()
        srv.server_close()
    assert exc.value.type == "protocol" and exc.value.status == status
    assert f"HTTP {status}" in exc.value.message and (ctype or "no content type") in exc.value.message
    if body.startswith(b"{"):
        assert "keys id" in exc.value.message and "not a completion" not in exc.value.message  # keys, never values
