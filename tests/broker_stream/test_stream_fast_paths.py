"""The streaming fast paths keep the answers identical: SSE coalescing, metadata-scan memo.

Tier 1 and 2 (answer redaction): a secret in stream metadata is redacted even when the secret
becomes known mid-stream; coalesced SSE writes still deliver the first event at once.
"""
import asyncio
import json
import secrets
import time

from jupyter_securellm.detect import Redactor, fake_secret
from jupyter_securellm.server.streaming import AnswerRedactor, _CleanStrings


class _broker(AnswerRedactor):
    """The broker's answer redactor on its own (nothing to close)."""

    def __init__(self):
        super().__init__(Redactor())

    def close(self):
        pass


def test_metadata_memo_rescans_after_a_secret_is_added_mid_stream():
    b = _broker()
    try:
        model = secrets.token_urlsafe(24)
        chunk = lambda: {"id": "chatcmpl-1", "model": model, "choices": [{"delta": {"content": "hi"}}]}  # noqa: E731
        clean = _CleanStrings()
        assert b.redact_obj(chunk(), skip_content=True, clean=clean) == chunk()
        assert b.redact_obj(chunk(), skip_content=True, clean=clean) == chunk()  # served from the memo
        b.redactor.add_secret(model)  # e.g. another request read it from Vault meanwhile
        out = b.redact_obj(chunk(), skip_content=True, clean=clean)
        assert model not in json.dumps(out) and out["model"].startswith("[REDACTED")
        assert out["choices"][0]["delta"]["content"] == "hi"  # content is the stream redactor's job
    finally:
        b.close()


def test_metadata_memo_gives_the_same_answer_as_scanning_every_chunk():
    b = _broker()
    try:
        key = fake_secret("github-token")
        stream = [{"id": "c1", "model": "m", "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": {"role": "assistant", "content": key if i == 2 else "x",
                                                      "tool_calls": [{"function": {"arguments": a}}]},
                                "finish_reason": None}]}
                  for i, a in enumerate(["{", f'"k": "{key}"', "}", f"{key}", "ok"])]
        clean = _CleanStrings()
        with_memo = [b.redact_obj(json.loads(json.dumps(c)), skip_content=True, clean=clean) for c in stream]
        without = [b.redact_obj(json.loads(json.dumps(c)), skip_content=True) for c in stream]
        assert with_memo == without
        # text fields (content, tool-call arguments, ...) are untouched here: stream-redacted upstream
        assert with_memo[2]["choices"][0]["delta"]["content"] == key
        assert with_memo[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == key
    finally:
        b.close()


async def test_coalesced_sse_still_sends_the_first_event_at_once(jp_fetch, jp_serverapp, jp_base_url, provider):
    """A slow provider: each event must leave as soon as it is ready, not when the stream ends.

    (`jp_fetch` makes pytest-jupyter serve HTTP on `jp_serverapp.port`.)
    """
    body = json.dumps({"model": "gpt", "stream": True,
                       "messages": [{"role": "user", "content": "a b c [[provider:slow=0.4]]"}]}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_serverapp.port)
    token = jp_serverapp.identity_provider.token
    writer.write(
        f"POST {jp_base_url}jupyter-securellm/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: token {token}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode() + body)
    await writer.drain()
    arrivals, raw = [], b""
    while not raw.endswith(b"\r\n0\r\n\r\n"):
        data = await asyncio.wait_for(reader.read(65536), 30)
        assert data, raw
        raw += data
        arrivals.append((time.monotonic(), raw.count(b"data: ")))
    writer.close()
    first = next(t for t, n in arrivals if n >= 1)
    done = arrivals[-1][0]
    # Held back to the end, every event would arrive within milliseconds of the last. With 0.4 s between
    # provider chunks they spread over more than a second; litellm may deliver its first few chunks in one
    # burst (seen on a fresh server), so require a generous half of that, and at least three batches.
    assert done - first >= 0.5, arrivals
    assert len({n for _, n in arrivals if n}) >= 3, arrivals
    events = [e[len("data: "):] for e in _dechunk(raw.split(b"\r\n\r\n", 1)[1]).decode().split("\n\n") if e]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text == "echo: a b c"


def _dechunk(body: bytes) -> bytes:
    """The payload of an HTTP/1.1 chunked body."""
    out, pos = b"", 0
    while True:
        eol = body.index(b"\r\n", pos)
        size = int(body[pos:eol], 16)
        if size == 0:
            return out
        out += body[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


async def test_many_queued_chunks_arrive_complete_and_in_order(broker_api, provider, vault_provider_key):
    """chars=1: one chunk per character, all queued at once, so they are coalesced into few writes."""
    words = " ".join(secrets.token_hex(3) for _ in range(30))
    code, _, raw = await broker_api("chat/completions", {
        "model": "gpt", "stream": True, "messages": [{"role": "user", "content": words + " [[provider:chars=1]]"}]})
    assert code == 200, raw
    events = [e[len("data: "):] for e in raw.split("\n\n") if e]
    assert events[-1] == "[DONE]" and all(e.startswith("{") for e in events[:-1])
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == "echo: " + words
    assert len(chunks) > len(words)  # one SSE event per provider chunk, none merged
    assert vault_provider_key not in raw


def test_tool_call_arguments_split_over_chunks_are_redacted_per_tool_call():
    """A key split over the argument chunks of one tool call, interleaved with another tool call's."""
    from jupyter_securellm.server.streaming import _DeltaStreams

    b = _broker()
    try:
        key = fake_secret("github-token")
        streams = _DeltaStreams(b.redactor)
        pieces = [key[i:i + 5] for i in range(0, len(key), 5)]
        out = {0: "", 1: ""}
        for p in pieces:
            delta = {"tool_calls": [{"index": 0, "function": {"arguments": p}},
                                    {"index": 1, "function": {"arguments": "fine "}}]}
            streams.feed(0, delta)
            for tc in delta["tool_calls"]:
                out[tc["index"]] += tc["function"]["arguments"]
        final: dict = {}
        streams.flush_into(0, final)
        for tc in final.get("tool_calls", []):
            out[tc["index"]] += tc["function"]["arguments"]
        assert key not in out[0] and "[REDACTED:github-token]" in out[0]
        assert out[1] == "fine " * len(pieces)
    finally:
        b.close()
