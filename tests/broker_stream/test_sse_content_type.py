"""A stream whose events all arrive at once is still sent as an event stream.

Seen in CI in tier 3: when the Hub service's whole answer reached the user's server in one read, the
handler wrote every event before its scheduled flush could run, and Jupyter's APIHandler.finish()
then labelled the body `application/json`; the kernel could not read it. The real forwarder cannot be
made to read in one piece on demand, so a broker stand-in yields every chunk without suspending, in a
real Jupyter server (without the fix, this test gets `application/json`).
"""
import json

import pytest


@pytest.fixture
def jp_server_config(securellm_server_config):
    return securellm_server_config


class _AllAtOnce:
    """Answers a stream with chunks that are all ready (no await between them), like a buffered forward."""

    async def dispatch(self, caller, action, body=None):
        assert action == "chat" and body.get("stream") is True

        async def chunks():
            for word in ["every ", "event ", "at ", "once"]:
                yield {"id": "c1", "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}

        return chunks()

    async def aclose(self):
        pass


async def test_events_ready_at_once_are_sent_as_an_event_stream(jp_serverapp, jp_fetch):
    settings = jp_serverapp.web_app.settings
    real = settings["jupyter_securellm_broker"]
    settings["jupyter_securellm_broker"] = _AllAtOnce()
    try:
        resp = await jp_fetch("jupyter-securellm", "v1", "chat", "completions", method="POST",
                              body=json.dumps({"model": "m", "stream": True,
                                               "messages": [{"role": "user", "content": "hi"}]}))
    finally:
        settings["jupyter_securellm_broker"] = real
    assert resp.code == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream"), resp.headers["Content-Type"]
    events = [line[6:] for line in resp.body.decode().split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1])
    assert text == "every event at once"

    # and the kernel's own client reads it (it refused the mislabelled body with a 'protocol' error)
    from jupyter_securellm.kernel.client import delta_text, iter_chunks

    lines = [ln.encode() + b"\n" for ln in resp.body.decode().split("\n")]
    assert "".join(delta_text(c) for c in iter_chunks(lines)) == "every event at once"
