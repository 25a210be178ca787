"""`%llm error` and `%%llm -f code --insert`, through the broker: real OpenBao, a real Jupyter server,
kernels it started, and the stand-in provider (which records every request it receives).

Trust tier 1 and 2: a traceback or a cell holding a secret (a `secrets.get` value, a pasted key) is
redacted in the kernel and checked by DLP before anything leaves; the provider never receives it.
"""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def _bundles(msgs):
    return [m["content"]["data"] for m in msgs if m["msg_type"] in ("display_data", "update_display_data")]


def _sent_since(provider, before) -> str:
    return "\n".join(json.dumps(r.body) for r in provider.requests[before:])


def test_llm_error_explains_the_last_traceback_without_its_secrets(server_kernel, demo_stack, assert_absent,
                                                                   fake_key):
    k = server_kernel()
    k.run("%load_ext jupyter_securellm\nfrom jupyter_securellm import secrets")
    # a traceback holding a Vault value (in the message and in a local) ...
    msgs = k.run("pw = secrets.get('db/warehouse', 'password').reveal()\n"
                 "def connect(password):\n"
                 "    raise ConnectionError('login failed for ' + password)\n"
                 "connect(pw)", allow_error=True)
    assert msgs[-1]["content"]["status"] == "error"
    before = len(demo_stack.provider.requests)
    msgs = k.run("%llm error -m demo")
    sent = _sent_since(demo_stack.provider, before)
    assert sent, "nothing reached the provider"
    assert "ConnectionError" in sent and "connect(pw)" in sent and "[REDACTED:known-secret]" in sent
    assert_absent(sent, demo_stack.db_password, "the request to the provider")
    answer = _bundles(msgs)[-1]["text/markdown"]
    assert answer.startswith("echo: Explain this Python error") and "ConnectionError" in answer
    assert_absent(k.text(k.all_messages), demo_stack.db_password, "kernel messages")
    # ... and a cell with a pasted key (the source guard only warns), explained with -m after the word
    msgs = k.run(f"client_key = {fake_key!r}\nint('not a number')", allow_error=True)
    before = len(demo_stack.provider.requests)
    k.run("%llm -m demo error")
    sent = _sent_since(demo_stack.provider, before)
    assert "ValueError" in sent and "[REDACTED:openai-api-key]" in sent
    assert_absent(sent, fake_key, "the request to the provider")
    assert all(r.auth_ok for r in demo_stack.provider.requests[before:])


def test_llm_error_with_nothing_to_explain(server_kernel, demo_stack):
    k = server_kernel()
    k.run("%load_ext jupyter_securellm")
    before = len(demo_stack.provider.requests)
    msgs = k.run("%llm error", allow_error=True)  # IPython shows a UsageError as one line on stderr
    assert "UsageError: No error to explain yet" in k.stream_text(msgs, "stderr")
    assert len(demo_stack.provider.requests) == before


def test_code_answer_is_inserted_below_never_run(server_kernel, demo_stack):
    k = server_kernel()
    k.run("%load_ext jupyter_securellm")
    demo_stack.provider.reply = "```python\ninserted_marker = 42\nprint(inserted_marker)\n```"
    try:
        msgs = k.run("%%llm -m demo -f code --insert\nset a marker")
    finally:
        demo_stack.provider.reply = None
    reply = msgs[-1]["content"]
    payloads = [p for p in reply.get("payload", []) if p.get("source") == "set_next_input"]
    assert payloads == [{"source": "set_next_input", "text": "inserted_marker = 42\nprint(inserted_marker)\n",
                         "replace": False}]
    # shown as code in the output too, and never executed
    assert "inserted_marker = 42" in _bundles(msgs)[-1]["text/plain"]
    out = k.stream_text(k.run("print('inserted_marker' in globals())"))
    assert out.strip() == "False"
    msgs = k.run("%%llm -m demo --insert\nhello", allow_error=True)  # only with -f code
    assert "--insert puts code in a new cell: use it with -f code" in k.stream_text(msgs, "stderr")
