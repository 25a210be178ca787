"""End to end: real OpenBao (dev server, AppRole for the broker), the stand-in provider, a real Jupyter
server with the broker, and kernels started by that server.

Trust tier 2: the kernel holds only its capability token; the provider key travels
Vault -> server -> provider (the provider accepts only that key), never through the kernel.
"""
from __future__ import annotations

import json
import queue
import sqlite3
import time

import nbformat
import pytest

pytestmark = pytest.mark.slow


def _errors(msgs):
    return [m for m in msgs if m["msg_type"] == "error"]


def _bundles(msgs):
    return [m["content"]["data"] for m in msgs if m["msg_type"] in ("display_data", "update_display_data")]


def test_llm_streams_through_the_broker_and_the_key_never_enters_the_kernel(server_kernel, demo_stack, assert_absent):
    k = server_kernel()
    k.run("%load_ext jupyter_securellm")
    assert "demo" in k.stream_text(k.run("%llm models"))
    before = len(demo_stack.provider.requests)
    msgs = k.run("%%llm -m demo\n[[provider:slow=0.05]] one two three four five six seven eight")
    bundles = _bundles(msgs)
    updates = [m for m in msgs if m["msg_type"] == "update_display_data"]
    displays = [m for m in msgs if m["msg_type"] == "display_data"]
    assert len(displays) == 1 and updates, "the answer must go to ONE display, updated in place"
    assert {m["content"]["transient"]["display_id"] for m in updates + displays} == {
        displays[0]["content"]["transient"]["display_id"]}
    assert "echo:" in bundles[-1]["text/markdown"] and "eight" in bundles[-1]["text/markdown"]
    reqs = demo_stack.provider.requests[before:]
    assert reqs and all(r.auth_ok for r in reqs)  # the provider saw exactly the key held in OpenBao
    assert reqs[-1].body["stream"] is True
    out = k.stream_text(k.run("import sys, os\nprint('litellm' in sys.modules, 'hvac' in sys.modules, "
                              "'JUPYTER_SECURELLM_KERNEL_TOKEN' in os.environ)"))
    assert out.strip() == "False False False"
    assert_absent(k.text(k.all_messages), demo_stack.provider_key, "kernel messages")


def test_answer_streams_token_by_token(server_kernel, demo_stack):
    k = server_kernel()
    k.run("%load_ext jupyter_securellm")
    # The server's first provider call includes litellm's lazy imports, during which chunks pile up
    # and then arrive together; measure streaming on a warm server.
    k.run("%%llm -m demo --no-history\nwarm up")
    msgs = k.run("%%llm -m demo\n[[provider:slow=0.1]] one two three four five six seven eight")
    updates = [m for m in msgs if m["msg_type"] == "update_display_data"]
    assert len(updates) >= 4


def test_formats_output_variable_and_chat_history(server_kernel, demo_stack):
    k = server_kernel()
    k.run("%load_ext jupyter_securellm\n%config SecureLLMMagics.default_model = 'demo'")
    k.run("%%llm -o ans --no-history\nremember me")
    assert k.stream_text(k.run("print(ans)")).strip() == "echo: remember me"
    code = _bundles(k.run("%%llm -f code\nprint hello"))[-1]
    assert code["text/markdown"].startswith("```python\n")
    assert "text/html" in _bundles(k.run("%%llm -f html\n<b>x</b>"))[-1]
    assert _bundles(k.run("%%llm -f text --no-history\nplain"))[-1] == {"text/plain": "echo: plain"}
    k.run("%%llm --chat c1\nfirst")
    k.run("%%llm --chat c1 --system 'be brief' --temperature 0.2 --max-tokens 50\nsecond")
    body = demo_stack.provider.requests[-1].body
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50
    k.run("%llm reset c1")
    k.run("%%llm --chat c1\nthird")
    assert len(demo_stack.provider.requests[-1].body["messages"]) == 1
    k.run("%llm demo a line magic question")
    assert demo_stack.provider.requests[-1].body["messages"][-1]["content"] == "a line magic question"
    # no IPython $var / {var} expansion of prompts (no_var_expand), no format_map of the namespace
    k.run("topic = 'EXPANDED'\n%llm demo what's $HOME and {topic} and {os.environ}?")
    assert demo_stack.provider.requests[-1].body["messages"][-1]["content"] == "what's $HOME and {topic} and {os.environ}?"
    k.run("%%llm --vars\nexplain {topic}, not {topic.lower}")
    assert demo_stack.provider.requests[-1].body["messages"][-1]["content"] == "explain EXPANDED, not {topic.lower}"


def test_errors_are_one_clear_sentence(server_kernel, demo_stack, fake_key, tmp_path):
    k = server_kernel()
    k.run("%load_ext jupyter_securellm")
    cases = {
        "%%llm -m no-such-model\nhi": None,
        "%%llm -m demo\n[[provider:429]] hi": "rate",
        "%%llm -m demo\n[[provider:500]] hi": "provider",
    }
    for code, word in cases.items():
        msgs = k.run(code, allow_error=True)
        errs = _errors(msgs)
        assert errs, code
        tb = errs[0]["content"]["traceback"]
        assert len(tb) == 1 and tb[0].startswith("SecureLLM (") and "File " not in tb[0], tb
        if word:
            assert word in tb[0].lower()
    # an error after streaming began: the partial answer stays, then one sentence
    msgs = k.run("%%llm -m demo\n[[provider:break=2]] alpha beta gamma delta", allow_error=True)
    tb = _errors(msgs)[0]["content"]["traceback"]
    assert len(tb) == 1 and tb[0].startswith("SecureLLM (")
    assert "echo:" in json.dumps(_bundles(msgs))
    # the kernel gives up on a silent broker after SecureLLMMagics.timeout seconds
    k.run("%config SecureLLMMagics.timeout = 0.5")
    msgs = k.run("%%llm -m demo\n[[provider:slow=2]] a b", allow_error=True)
    assert "SecureLLM (timeout)" in _errors(msgs)[0]["content"]["traceback"][0]
    k.run("%config SecureLLMMagics.timeout = 120")
    before = len(demo_stack.provider.requests)
    (tmp_path / "leak.txt").write_text(fake_key)
    k.run(f"leaky = open({str(tmp_path / 'leak.txt')!r}).read()")
    msgs = k.run("%%llm -m demo --vars\nsummarise {leaky}", allow_error=True)
    assert "looks like a secret" in _errors(msgs)[0]["content"]["traceback"][0]
    assert len(demo_stack.provider.requests) == before  # nothing was sent


def test_interrupt_stops_a_streaming_answer_cleanly(server_kernel, demo_stack):
    k = server_kernel()
    k.run("%load_ext jupyter_securellm")
    words = " ".join(f"w{i}" for i in range(60))
    msg_id = k.kc.execute(f"%%llm -m demo\n[[provider:slow=0.2]] {words}")
    msgs, interrupted = [], False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            msg = k.kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        msgs.append(msg)
        if not interrupted and msg["msg_type"] == "update_display_data":
            k.interrupt()
            interrupted = True
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = k.kc.get_shell_msg(timeout=30)
    assert interrupted and reply["content"]["status"] == "ok"
    final = _bundles(msgs)[-1]["text/markdown"]
    assert "[stopped]" in final and "w59" not in final
    assert k.stream_text(k.run("print(1 + 1)")).strip() == "2"  # the kernel is fine afterwards


def test_secrets_get_through_the_broker_is_redacted_everywhere(server_kernel, demo_stack, assert_absent):
    k = server_kernel()
    k.run("%load_ext jupyter_securellm")
    k.run("from jupyter_securellm import secrets\npw = secrets.get('db/warehouse', 'password')")
    out = k.stream_text(k.run("print(pw); print(pw.reveal()); print(pw.reveal()[::-1]); "
                              "import base64; print(base64.b64encode(pw.reveal().encode()))"))
    assert out.count("[REDACTED:known-secret]") >= 3
    msgs = k.run("pw")
    assert "Secret('[REDACTED:known-secret]')" in k.text(msgs)
    import hashlib

    digest = k.stream_text(k.run("import hashlib; print(hashlib.sha256(pw.encode()).hexdigest())")).strip()
    assert digest == hashlib.sha256(demo_stack.db_password.encode()).hexdigest()  # usable as the real value
    msgs = k.run("secrets.get('llm/openai', 'api_key')", allow_error=True)  # provider keys are never returned
    tb = _errors(msgs)[0]["content"]["traceback"]
    assert len(tb) == 1 and "SecureLLM (policy_denied)" in tb[0]
    dump = k.text(k.all_messages)
    assert_absent(dump, demo_stack.db_password, "kernel messages")
    assert_absent(dump, demo_stack.provider_key, "kernel messages")


def _run_notebook(kernel, nb):
    """Run the code cells in order and record outputs the way a frontend would (display updates applied)."""
    by_display_id = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        msgs = kernel.run(cell.source, allow_error=True)
        cell.outputs = []
        for m in msgs:
            kind = m["msg_type"]
            if kind in ("stream", "display_data", "execute_result", "error"):
                out = nbformat.v4.output_from_msg(m)
                cell.outputs.append(out)
                did = (m["content"].get("transient") or {}).get("display_id")
                if did:
                    by_display_id.setdefault(did, []).append(out)
            elif kind == "update_display_data":
                for out in by_display_id.get(m["content"]["transient"]["display_id"], []):
                    out["data"] = m["content"]["data"]
                    out["metadata"] = m["content"]["metadata"]
        cell.execution_count = msgs[-1]["content"].get("execution_count")
    return nb


def test_quickstart_runs_top_to_bottom_and_saves_clean(server_kernel, demo_stack, assert_absent):
    nbdir = demo_stack.workdir / "notebooks"
    nb = nbformat.read(nbdir / "quickstart.ipynb", as_version=4)
    k = server_kernel()
    _run_notebook(k, nb)
    errors = [(c.source[:60], o) for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    text = json.dumps(nb)
    assert "echo: Explain what a p-value is" in text
    assert "[REDACTED:known-secret]" in text and "Refused to put a secret" in text
    assert '"application/vnd.jupyter.widget-view+json"' in text
    # save through the server's contents API (its save hook runs too) and read the file on disk
    k.rest("PUT", "api/contents/quickstart-run.ipynb", {"type": "notebook", "format": "json", "content": nb})
    saved = (nbdir / "quickstart-run.ipynb").read_text()
    assert "echo: Explain what a p-value is" in saved
    for value in (demo_stack.db_password, demo_stack.provider_key):
        assert_absent(saved, value, "the saved notebook")
        assert_absent(k.text(k.all_messages), value, "iopub")
    k.shutdown()
    db = sqlite3.connect(demo_stack.workdir / "ipython" / "profile_default" / "history.sqlite")
    rows = json.dumps(db.execute("SELECT source_raw FROM history").fetchall())
    db.close()
    assert "secrets.get" in rows
    assert_absent(rows, demo_stack.db_password, "the history database")


def test_status_panel_and_chat_widget(server_kernel, demo_stack, assert_absent):
    k = server_kernel()
    k.run("%load_ext jupyter_securellm\n%config SecureLLMMagics.default_model = 'demo'")
    msgs = k.run("%llm status")
    opened = [m for m in msgs if m["msg_type"] == "comm_open"]
    state = json.dumps([m["content"]["data"] for m in opened])
    assert "SecureLLM status" in state and "approle" in state and "reachable" in state and "demo" in state
    k.run("pw = __import__('jupyter_securellm').secrets.get('db/warehouse', 'password')")
    msgs = k.run("from jupyter_securellm.kernel import backend, widgets\n"
                 "box = widgets.ChatBox(backend.active_magics(), 'w')\n"
                 "display(box.widget)\n"
                 "box.ask('hello widget')\n"
                 "box.ask('my password is ' + pw.reveal())\n"  # refused before sending: a secret
                 "print(box.transcript.value.count('echo: hello widget'), 'looks like a secret' in box.status.value)")
    assert k.stream_text(msgs).split() == ["1", "True"]
    updates = [m for m in msgs if m["msg_type"] == "comm_msg"]
    assert any("echo: hello" in json.dumps(m["content"]["data"]) for m in updates)  # streamed into the widget
    assert_absent(k.text(k.all_messages), demo_stack.db_password, "widget state")
