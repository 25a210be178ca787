"""A stream ends for the caller at its finish_reason, not when the provider closes its side.

After the last choice's finish_reason the answer is whole (the stream redactors release what they held
at that chunk). The broker then settles and records the call and ends the caller's stream; the
provider's own end (`data: [DONE]`) and litellm's end-of-stream work (it rebuilds the whole answer and
prices it) are read in the background, so the pooled provider connection is still returned. A caller
that asked for `stream_options.include_usage` waits for the usage chunk, which comes after.

Real parts: an in-process Jupyter server with the extension, OpenBao, and the stand-in provider with
its `tail=S` knob (S seconds between the finish_reason chunk and its `data: [DONE]`).
"""
import json
import time

import pytest

from jupyter_securellm.testing.server_fixtures import sse_text

TAIL = 3.0  # the provider's pause before its own end of stream: far above a call's time on a loaded box


@pytest.fixture
def jp_server_config(securellm_server_config, tmp_path):
    securellm_server_config["SecureLLM"]["audit_log_path"] = str(tmp_path / "audit.jsonl")
    return securellm_server_config


def _calls(tmp_path) -> list[dict]:
    path = tmp_path / "audit.jsonl"
    if not path.exists():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if r.get("type") == "call"]


async def _wait_for(predicate, timeout: float):
    import asyncio

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _body(prompt: str, **extra) -> dict:
    return {"model": "gpt", "stream": True, "messages": [{"role": "user", "content": prompt}], **extra}


async def test_the_caller_has_the_whole_answer_and_its_audit_record_before_the_provider_ends(
        chat, provider, jp_serverapp, tmp_path):
    code, _, raw = await chat(_body("warm up"))  # the first call imports litellm
    assert code == 200, raw
    broker = jp_serverapp.web_app.settings["jupyter_securellm_broker"]
    assert await _wait_for(lambda: not broker._drains, 10)
    before = len(provider.requests)

    t0 = time.monotonic()
    code, _, raw = await chat(_body(f"the end comes first [[provider:tail={TAIL}]]"))
    elapsed = time.monotonic() - t0
    assert code == 200, raw
    assert sse_text(raw) == "echo: the end comes first"
    assert raw.rstrip().endswith("data: [DONE]")
    assert elapsed < TAIL - 1.0, f"the caller waited {elapsed:.2f} s: for the provider's end of stream"
    # the call was settled and recorded before the caller's end of stream, not after it
    rec = _calls(tmp_path)[-1]
    assert rec["status"] == "ok" and rec["model"] == "gpt"
    # the provider's end is still being read, then the drain finishes and returns the connection
    assert len(broker._drains) == 1
    assert await _wait_for(lambda: not broker._drains, TAIL + 20), "the provider stream was never read to its end"
    code, _, raw = await chat(_body("again"))
    assert code == 200 and sse_text(raw) == "echo: again"
    ports = [r.client_port for r in provider.requests[before:]]
    assert len(ports) == 2 and ports[0] == ports[1], f"the pooled connection was not reused: {ports}"
    assert len(_calls(tmp_path)) == 3  # one record per call, none written twice by the drain


async def test_a_caller_that_asked_for_usage_waits_for_the_usage_chunk(chat, jp_serverapp, tmp_path):
    code, _, raw = await chat(_body("warm up"))
    assert code == 200, raw
    t0 = time.monotonic()
    code, _, raw = await chat(_body(f"count me [[provider:tail={TAIL / 2}]]", stream_options={"include_usage": True}))
    elapsed = time.monotonic() - t0
    assert code == 200, raw
    events = [json.loads(x[6:]) for x in raw.splitlines() if x.startswith("data: {")]
    assert events[-1]["usage"]["total_tokens"] == events[-1]["usage"]["prompt_tokens"] + 3
    assert elapsed >= TAIL / 2  # the usage chunk comes after every finish_reason: nothing to cut short
    assert not jp_serverapp.web_app.settings["jupyter_securellm_broker"]._drains
    rec = _calls(tmp_path)[-1]
    assert rec["status"] == "ok" and rec["tokens_out"] == 3


async def test_every_choice_must_finish_before_the_stream_ends(chat, jp_serverapp):
    """With n=2 the stand-in finishes choice 0 only: the broker waits for the provider's end."""
    code, _, raw = await chat(_body("warm up"))
    assert code == 200, raw
    t0 = time.monotonic()
    code, _, raw = await chat(_body(f"two of us [[provider:tail={TAIL / 2}]]", n=2))
    assert code == 200, raw
    assert time.monotonic() - t0 >= TAIL / 2
    assert sse_text(raw) == "echo: two of us"
