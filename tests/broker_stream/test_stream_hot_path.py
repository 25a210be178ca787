"""The streaming hot path's single walk per chunk (server/streaming.py), compact SSE events and the
per-chunk egress scope: cheaper, and nothing a chunk carries escapes redaction.

Tier 2 (answer redaction): every string of every chunk is redacted, either by a StreamRedactor (the
delta's text fields) or whole (everything else, including a streamed-looking name outside a delta).
"""
import asyncio
import json

from jupyter_securellm.detect import Redactor, fake_secret
from jupyter_securellm.server.egress import EgressGuard, in_scope
from jupyter_securellm.server.handlers import _event
from jupyter_securellm.server.provider import _ScopedStream
from jupyter_securellm.server.streaming import AnswerRedactor
from jupyter_securellm.testing.provider import ReplayedStream


class _Chunk:
    """What litellm yields: an object with model_dump() (a fresh dict each time)."""

    def __init__(self, d):
        self._json = json.dumps(d)

    def model_dump(self):
        return json.loads(self._json)


def _run(chunks, redactor=None):
    ar = AnswerRedactor(redactor or Redactor())

    async def go():
        return [c async for c in ar.stream(ReplayedStream([_Chunk(c) for c in chunks]), "gpt", 30)]

    return asyncio.run(go())


def _text(out, field="content"):
    return "".join(c["choices"][0]["delta"].get(field) or "" for c in out if c.get("choices"))


def test_streamed_names_outside_the_delta_are_redacted_whole():
    """`text`/`content` outside a delta are no streamed fields: before the single walk they were neither
    stream-redacted nor scanned (the whole-string pass skipped every STREAMED_KEYS name)."""
    key = fake_secret("github-token")
    out = _run([{"id": "c1", "choices": [{"index": 0, "text": key, "delta": {"content": "hi"},
                                          "provider_specific_fields": {"thinking": key}}],
                 "provider_specific_fields": {"content": key, "refusal": [key]}},
                {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}])
    raw = json.dumps(out)
    assert key not in raw
    assert out[0]["choices"][0]["text"] == "[REDACTED:github-token]"
    assert out[0]["provider_specific_fields"] == {"content": "[REDACTED:github-token]",
                                                  "refusal": ["[REDACTED:github-token]"]}
    assert _text(out) == "hi"


def test_a_list_under_a_streamed_name_in_the_delta_is_redacted_whole():
    key = fake_secret("openai-api-key")
    out = _run([{"id": "c1", "choices": [{"index": 0, "delta": {"content": [key, {"text": key}]}}]},
                {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}])
    assert key not in json.dumps(out)
    assert out[0]["choices"][0]["delta"]["content"][0] == "[REDACTED:openai-api-key]"


def test_one_walk_redacts_every_field_a_chunk_can_carry():
    """A key split over content, tool-call arguments and reasoning chunks, and whole in metadata."""
    key = fake_secret("github-token")
    parts = [key[i:i + 7] for i in range(0, len(key), 7)]
    chunks = [{"id": "c1", "model": "m", "object": "chat.completion.chunk", "system_fingerprint": None,
               "choices": [{"index": 0, "finish_reason": None, "logprobs": None,
                            "delta": {"role": "assistant" if i == 0 else None, "content": p, "refusal": None,
                                      "reasoning_content": p,
                                      "tool_calls": [{"index": 0, "id": "t1", "type": "function",
                                                      "function": {"name": "f", "arguments": p}}]}}]}
              for i, p in enumerate(parts)]
    chunks.append({"id": "c1", "model": key, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    out = _run(chunks)
    raw = json.dumps(out)
    assert key not in raw
    for p in parts[1:-1]:  # no piece long enough to name the key leaks either
        assert p not in raw or p in "[REDACTED:github-token]assistantchat.completion.chunk"
    assert "[REDACTED:github-token]" in _text(out)
    assert "[REDACTED:github-token]" in _text(out, "reasoning_content")
    args = "".join(tc["function"].get("arguments") or "" for c in out for ch in c["choices"]
                   for tc in (ch["delta"].get("tool_calls") or []))
    assert "[REDACTED:github-token]" in args
    assert out[-1]["model"] == "[REDACTED:github-token]"


def test_clean_chunks_pass_unchanged():
    chunks = [{"id": "c1", "model": "m", "choices": [{"index": 0, "finish_reason": None,
                                                      "delta": {"role": None, "content": w, "tool_calls": None}}]}
              for w in ("the ", "quick ", "fox")]
    chunks.append({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": None},
                                                          "finish_reason": "stop"}]})
    out = _run(chunks)
    assert _text(out) == "the quick fox"
    assert len(out) == len(chunks)
    for got, sent in zip(out, chunks):  # a redactor may hold a word back to the next chunk, nothing else moves
        got["choices"][0]["delta"].pop("content"), sent["choices"][0]["delta"].pop("content")
    assert out == chunks


def test_events_are_compact_and_round_trip():
    obj = {"id": "c1", "choices": [{"index": 0, "delta": {"content": "a, b: c"}, "finish_reason": None}],
           "usage": None, "note": "é"}
    ev = _event(obj)
    assert ev.startswith(b"data: {") and ev.endswith(b"\n\n")
    assert json.loads(ev[len(b"data: "):]) == obj
    assert b'": ' not in ev and b'", "' not in ev  # no separator spaces (the ones in the text stay)
    assert ev.isascii()
    assert len(ev) < len(b"data: " + json.dumps(obj).encode() + b"\n\n")


def test_each_chunk_read_runs_inside_the_calls_egress_scope():
    """Some clients send the request only when the stream is first read: every read is in scope."""
    seen = []

    class Inner:
        def __init__(self):
            self.n = 0

        def __aiter__(self):
            return self

        async def __anext__(self):
            seen.append(in_scope())
            await asyncio.sleep(0)
            seen.append(in_scope())
            self.n += 1
            if self.n > 3:
                raise StopAsyncIteration
            return self.n

    async def go():
        s = _ScopedStream(Inner(), EgressGuard("http://127.0.0.1:9/v1", "127.0.0.1", ["127.0.0.1:9"]))
        got = [x async for x in s]
        return got, in_scope()

    got, after = asyncio.run(go())
    assert got == [1, 2, 3]
    assert seen and all(seen)
    assert after is False
