"""A provider that stalls mid-stream: the broker ends the stream with a timeout error event."""
import json

import pytest


@pytest.fixture
def securellm_config(securellm_config):
    securellm_config["request_timeout"] = 3.0
    return securellm_config


async def test_slow_stream_times_out(broker_api, provider):
    # warm-up call (the first litellm call loads lazily; not what we time)
    await broker_api("chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "w"}]})
    code, _, raw = await broker_api("chat/completions", {
        "model": "gpt", "stream": True, "messages": [{"role": "user", "content": "a b [[provider:slow=4]]"}]})
    assert code == 200
    last = json.loads([e for e in raw.split("\n\n") if e][-1][len("data: "):])
    assert last["error"]["type"] == "timeout"
