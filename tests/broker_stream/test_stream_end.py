"""A stream ends for the caller at its finish_reason, not when the provider closes its side; the
budgets settle with the provider's own usage.

After the last choice's finish_reason the answer is whole (the stream redactors release what they held
at that chunk), and the caller's stream ends. The provider's own end (`data: [DONE]`), the usage chunk
the broker asked for, and litellm's end-of-stream work (it rebuilds the whole answer and prices it) are
read in the background, so the pooled provider connection is still returned; the call is then settled
and recorded with the provider's token counts. A model with `"stream_usage": False` is settled and
recorded before the caller's end, from what was streamed. A caller that asked for
`stream_options.include_usage` waits for the usage chunk, which comes after.

Real parts: an in-process Jupyter server with the extension, OpenBao, and the stand-in provider with
its `tail=S` knob (S seconds between the finish_reason chunk and its `data: [DONE]`).
"""
import json
import time

import pytest

from jupyter_securellm.testing.server_fixtures import audit_records, sse_text, until

TAIL = 3.0  # the provider's pause before its own end of stream: far above a call's time on a loaded box


@pytest.fixture
def jp_server_config(securellm_server_config, tmp_path):
    cfg = securellm_server_config["SecureLLM"]
    cfg["audit_log_path"] = str(tmp_path / "audit.jsonl")
    cfg["models"]["estimated"] = dict(cfg["models"]["gpt"], stream_usage=False)
    return securellm_server_config


def _calls(tmp_path) -> list[dict]:
    return audit_records(tmp_path / "audit.jsonl", "call")


def _body(prompt: str, model: str = "gpt", **extra) -> dict:
    return {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}], **extra}


def _events(raw: str) -> list[dict]:
    return [json.loads(x[6:]) for x in raw.splitlines() if x.startswith("data: {")]


async def test_the_caller_has_the_whole_answer_before_the_provider_ends_and_the_ledger_gets_real_usage(
        chat, provider, jp_serverapp, tmp_path):
    code, _, raw = await chat(_body("warm up"))  # the first call imports litellm
    assert code == 200, raw
    broker = jp_serverapp.web_app.settings["jupyter_securellm_broker"]
    assert await until(lambda: not broker._drains, 10)
    before, records = len(provider.requests), len(_calls(tmp_path))

    t0 = time.monotonic()
    code, _, raw = await chat(_body(f"the end comes first [[provider:tail={TAIL}]]"))
    elapsed = time.monotonic() - t0
    assert code == 200, raw
    assert sse_text(raw) == "echo: the end comes first"
    assert raw.rstrip().endswith("data: [DONE]")
    assert elapsed < TAIL - 1.0, f"the caller waited {elapsed:.2f} s: for the provider's end of stream"
    # the broker asked for the usage chunk; the caller, who did not, never sees it
    assert provider.requests[-1].body["stream_options"] == {"include_usage": True}
    assert all(e.get("choices") for e in _events(raw)) and not any(e.get("usage") for e in _events(raw))
    # the provider's end is still being read: the call is recorded once its usage has arrived
    assert len(broker._drains) == 1
    assert await until(lambda: not broker._drains, TAIL + 20), "the provider stream was never read to its end"
    calls = _calls(tmp_path)
    assert len(calls) == records + 1
    rec = calls[-1]
    # the provider's count (one token per word), not an estimate from the 25 characters streamed (7)
    assert rec["status"] == "ok" and rec["model"] == "gpt" and rec["tokens_out"] == 5
    # the pooled connection was returned: the next call reuses it
    code, _, raw = await chat(_body("again"))
    assert code == 200 and sse_text(raw) == "echo: again"
    ports = [r.client_port for r in provider.requests[before:]]
    assert len(ports) == 2 and ports[0] == ports[1], f"the pooled connection was not reused: {ports}"
    assert await until(lambda: len(_calls(tmp_path)) == records + 2, 20)  # one record per call


async def test_a_model_without_stream_usage_is_recorded_before_the_callers_end(chat, provider, jp_serverapp,
                                                                                tmp_path):
    code, _, raw = await chat(_body("warm up", model="estimated"))
    assert code == 200, raw
    broker = jp_serverapp.web_app.settings["jupyter_securellm_broker"]
    assert await until(lambda: not broker._drains, 10)
    t0 = time.monotonic()
    code, _, raw = await chat(_body(f"the end comes first [[provider:tail={TAIL}]]", model="estimated"))
    assert code == 200 and sse_text(raw) == "echo: the end comes first", raw
    assert time.monotonic() - t0 < TAIL - 1.0
    assert "stream_options" not in provider.requests[-1].body
    rec = _calls(tmp_path)[-1]  # already there when the caller has its answer
    assert rec["status"] == "ok" and rec["model"] == "estimated"
    assert rec["tokens_out"] == 7  # estimated from the 25 characters streamed
    assert len(broker._drains) == 1  # the provider's end is read afterwards all the same


async def test_a_caller_that_asked_for_usage_waits_for_the_usage_chunk(chat, jp_serverapp, tmp_path):
    code, _, raw = await chat(_body("warm up"))
    assert code == 200, raw
    t0 = time.monotonic()
    code, _, raw = await chat(_body(f"count me [[provider:tail={TAIL / 2}]]", stream_options={"include_usage": True}))
    elapsed = time.monotonic() - t0
    assert code == 200, raw
    events = _events(raw)
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


async def test_a_server_that_refuses_stream_options_is_asked_again_without_and_remembered(
        chat, provider, tmp_path, server_log):
    provider.refuse_stream_options = True
    try:
        code, _, raw = await chat(_body("first call"))
        assert code == 200 and sse_text(raw) == "echo: first call", raw
        first = provider.requests[-2:]
        assert [("stream_options" in r.body) for r in first] == [True, False]
        assert await until(lambda: len(_calls(tmp_path)) == 1, 20)
        assert _calls(tmp_path)[-1]["tokens_out"] == 4  # estimated from the 16 characters streamed
        assert "refused stream_options" in server_log() and '"stream_usage": False' in server_log()
        n = len(provider.requests)
        code, _, raw = await chat(_body("second call"))
        assert code == 200 and sse_text(raw) == "echo: second call"
        assert len(provider.requests) == n + 1 and "stream_options" not in provider.requests[-1].body
    finally:
        provider.refuse_stream_options = False


async def test_a_provider_that_holds_the_stream_open_is_not_waited_for_long(chat, provider, jp_serverapp,
                                                                           tmp_path, monkeypatch):
    """After every choice finished the provider gets DRAIN_TIMEOUT to end its stream; then the call is
    settled from what was streamed (its usage chunk never came) and the connection is dropped."""
    import jupyter_securellm.server.broker as broker_module

    code, _, raw = await chat(_body("warm up"))
    assert code == 200, raw
    broker = jp_serverapp.web_app.settings["jupyter_securellm_broker"]
    assert await until(lambda: not broker._drains, 10)
    records = len(_calls(tmp_path))
    monkeypatch.setattr(broker_module, "DRAIN_TIMEOUT", 0.5)
    t0 = time.monotonic()
    code, _, raw = await chat(_body(f"held open [[provider:tail={TAIL * 10}]]"))
    assert code == 200 and sse_text(raw) == "echo: held open", raw
    assert await until(lambda: len(_calls(tmp_path)) == records + 1, TAIL * 3)
    assert time.monotonic() - t0 < TAIL * 3  # not the provider's 30 s
    assert _calls(tmp_path)[-1]["tokens_out"] == 4  # estimated from the 15 characters streamed
