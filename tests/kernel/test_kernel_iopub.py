"""Real ipykernel kernels over jupyter_client: no secret (or encoding of it) in any iopub message,
in the execute replies, in the history database, or in a saved notebook.

Trust tier 1 (accidental exposure) for every output path; the env part also covers tier 2's
"children inherit the kernel's environment".
"""
from __future__ import annotations

import json
import secrets as pysecrets
import sqlite3
import textwrap

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def secret_files(tmp_path, fake_key):
    """The secrets live in files, so cell sources never contain them (like a value from Vault)."""
    random_secret = "pw-" + pysecrets.token_urlsafe(24)
    (tmp_path / "k.txt").write_text(fake_key)
    (tmp_path / "s.txt").write_text(random_secret)
    return fake_key, random_secret


LEAK_CELLS = [
    # stdout / stderr, whole, encoded, split, one char at a time across iopub flushes
    "print('key', k); print(s, file=sys.stderr)",
    "print(base64.b64encode(s.encode()).decode(), s.encode().hex(), s[::-1], urllib.parse.quote(s, safe=''))",
    "for i, c in enumerate(s):\n    print(c, end='', flush=True)\n    if i % 7 == 0: time.sleep(0.25)\nprint()",
    "for c in k: sys.stderr.write(c); sys.stderr.flush()",
    # output written straight to fd 1 by a child process (ipykernel captures it)
    "os.system('cat ' + repr(str(tmp / 's.txt')))",
    "!cat {str(tmp / 'k.txt')}",
    # rich display in several MIME types, updates, execute_result
    "display({'text/plain': s, 'text/html': '<b>' + s + '</b>', 'text/markdown': k, 'text/latex': s,"
    " 'application/json': {'v': [s]}, 'image/svg+xml': '<svg>' + k + '</svg>'}, raw=True)",
    "from IPython.display import HTML, Markdown, JSON\nh = display(HTML(k), display_id=True)\nh.update(Markdown(s))\ndisplay(JSON({'k': k}))",
    "s",
    "k",
    # logging and warnings
    "logging.basicConfig(); logging.getLogger('app').error('token=%s', s)",
    "import warnings; warnings.warn('leaky ' + k)",
    "try:\n    raise RuntimeError(s)\nexcept RuntimeError:\n    logging.getLogger('app').exception('failed')",
    # widgets: state sent over comm messages
    "import ipywidgets as w\nt = w.Text(value=s)\ndisplay(t)\nt.value = k\nt.description = s[:4]\nw.HTML(value=k)",
]

XMODES = ["Plain", "Context", "Verbose", "Minimal", "Docs"]


def test_no_secret_in_any_iopub_message(kernel_factory, secret_files, tmp_path, assert_absent):
    fake_key, random_secret = secret_files
    token = "kt-" + pysecrets.token_urlsafe(24)
    kernel = kernel_factory({"OPENAI_API_KEY": fake_key, "JUPYTER_SECURELLM_KERNEL_TOKEN": token})
    kernel.run("%load_ext jupyter_securellm")
    kernel.run(textwrap.dedent(f"""
        import base64, logging, os, sys, time, urllib.parse, pathlib
        from jupyter_securellm.kernel.redaction import add_secret
        tmp = pathlib.Path({str(tmp_path)!r})
        k = (tmp / 'k.txt').read_text()
        s = (tmp / 's.txt').read_text()
        add_secret(s)   # what secrets.get() does with a value from Vault
    """))
    outputs = []
    for code in LEAK_CELLS:
        outputs.extend(kernel.run(code))
    for mode in XMODES:
        kernel.run(f"%xmode {mode}")
        msgs = kernel.run("def f(secret_local):\n    other = secret_local[::-1]\n    raise ValueError('bad ' + secret_local)\nf(s)",
                          allow_error=True)
        errors = [m for m in msgs if m["msg_type"] == "error"]
        assert errors and "[REDACTED:known-secret]" in errors[0]["content"]["evalue"], mode
        outputs.extend(msgs)
        msgs = kernel.run("raise KeyError(k)", allow_error=True)
        assert msgs[-1]["content"]["status"] == "error"
        outputs.extend(msgs)

    dump = kernel.text(kernel.all_messages)
    # the test can fail: redaction really happened on each channel
    kinds = {m["msg_type"] for m in outputs}
    assert {"stream", "display_data", "update_display_data", "execute_result", "error", "comm_open", "comm_msg"} <= kinds
    assert dump.count("[REDACTED:") > 20
    for value in (fake_key, random_secret, token):
        assert_absent(dump, value, "iopub/shell messages")
    assert "key [REDACTED:openai-api-key]" in kernel.stream_text(outputs)


def test_children_inherit_no_secret_and_env_writes_are_refused(kernel_factory, fake_key):
    token = "kt-" + pysecrets.token_urlsafe(24)
    kernel = kernel_factory({"OPENAI_API_KEY": fake_key, "JUPYTER_SECURELLM_KERNEL_TOKEN": token,
                             "MY_DB_PASSWORD": "correct-horse-battery", "HARMLESS": "yes"})
    kernel.run("%load_ext jupyter_securellm")
    out = kernel.stream_text(kernel.run("!env"))
    out += kernel.stream_text(kernel.run("%%bash\nenv"))
    out += kernel.stream_text(kernel.run("import subprocess, os\nprint(subprocess.run(['env'], capture_output=True, text=True).stdout)"))
    out += kernel.stream_text(kernel.run("os.system('env')"))
    for name in ("OPENAI_API_KEY", "JUPYTER_SECURELLM_KERNEL_TOKEN", "MY_DB_PASSWORD"):
        assert f"{name}=" not in out, f"{name} was inherited by a child process"
    assert out.count("HARMLESS=yes") == 4
    (tmp := kernel.run(f"%env OPENAI_API_KEY={fake_key}", allow_error=True))
    errors = [m for m in tmp if m["msg_type"] == "error"]
    assert errors and "env guard" in "".join(errors[0]["content"]["traceback"])
    kernel.run("assert 'OPENAI_API_KEY' not in os.environ")
    msgs = kernel.run("os.environ['GITHUB_TOKEN'] = 'ghp-not-really-but-long-enough'", allow_error=True)
    assert msgs[-1]["content"]["status"] == "error"
    kernel.run("assert 'GITHUB_TOKEN' not in os.environ")
    assert fake_key not in kernel.text(kernel.all_messages)


def test_secret_literal_kept_out_of_history_db(kernel_factory, fake_key, tmp_path, assert_absent):
    kernel = kernel_factory()
    kernel.run("%load_ext jupyter_securellm")
    msgs = kernel.run(f"api_key = '{fake_key}'\nprint(len(api_key))")
    assert "contains a secret (openai-api-key" in kernel.stream_text(msgs, "stderr")
    assert kernel.stream_text(msgs).strip() == str(len(fake_key))  # warn mode: it ran
    kernel.run("%config SecureLLMMagics.source_guard = 'block'")
    msgs = kernel.run(f"blocked = '{fake_key}'", allow_error=True)
    assert msgs[-1]["content"]["status"] == "error"
    kernel.run("assert 'blocked' not in globals()")
    # execute_input (the broadcast of the cell source) is redacted too
    assert any(m["msg_type"] == "execute_input" and "[REDACTED:openai-api-key]" in m["content"]["code"]
               for m in kernel.all_messages)
    kernel.shutdown()
    db_path = tmp_path / "ipython" / "profile_default" / "history.sqlite"
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT source, source_raw FROM history").fetchall()
    db.close()
    dump = json.dumps(rows)
    assert "api_key = '[REDACTED:openai-api-key]'" in dump
    assert_absent(dump, fake_key, "the history database")
    assert_absent(kernel.text(kernel.all_messages), fake_key, "iopub")


def test_saved_notebook_holds_no_secret(secret_files, tmp_path, monkeypatch, assert_absent):
    import nbformat
    from nbclient import NotebookClient

    fake_key, random_secret = secret_files
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    nb = nbformat.v4.new_notebook()
    setup = textwrap.dedent(f"""
        %load_ext jupyter_securellm
        import base64, logging, os, sys, time, urllib.parse, pathlib
        from jupyter_securellm.kernel.redaction import add_secret
        tmp = pathlib.Path({str(tmp_path)!r})
        k = (tmp / 'k.txt').read_text(); s = (tmp / 's.txt').read_text(); add_secret(s)
    """)
    nb.cells = [nbformat.v4.new_code_cell(setup)] + [nbformat.v4.new_code_cell(c) for c in LEAK_CELLS]
    nb.cells.append(nbformat.v4.new_code_cell("%xmode Verbose\ndef f(x):\n    raise ValueError(x)\nf(s)"))
    client = NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    text = path.read_text()
    assert text.count("[REDACTED:") > 10
    assert '"output_type": "error"' in text
    for value in (fake_key, random_secret):
        assert_absent(text, value, "the saved notebook")


def test_unload_in_a_kernel_removes_every_hook(kernel_factory):
    kernel = kernel_factory()
    probe = textwrap.dedent("""
        import sys, os, logging, comm.base_comm as cb
        ip = get_ipython()
        state = (
            '_flush_buffers' in vars(sys.stdout), '_flush_buffers' in vars(sys.stderr),
            'send' in vars(ip.kernel.session), 'format' in vars(ip.display_formatter),
            'publish' in vars(ip.display_pub), '_showtraceback' in vars(ip), 'transform_cell' in vars(ip),
            'store_inputs' in vars(ip.history_manager), cb.BaseComm.send.__name__, cb.BaseComm.send.__module__,
            os.putenv.__module__, logging.getLogRecordFactory().__module__, 'llm' in ip.magics_manager.magics['cell'],
        )
        print(state)
    """)
    before = kernel.stream_text(kernel.run(probe))
    kernel.run("%load_ext jupyter_securellm")
    loaded = kernel.stream_text(kernel.run(probe))
    kernel.run("%unload_ext jupyter_securellm")
    after = kernel.stream_text(kernel.run(probe))
    assert loaded != before and loaded.count("True") >= 9
    assert after == before
