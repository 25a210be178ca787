"""The extension in a plain IPython InteractiveShell (no kernel, no server): load, unload, redaction paths.

Trust tier 1 (accidental exposure): output redaction, env guard, source guard, history.
"""
from __future__ import annotations

import io
import logging
import os
import pickle
import sqlite3
import subprocess
import sys
import textwrap

import pytest


def _hook_snapshot(ip):
    return {
        "stdout": sys.stdout,
        "stderr": sys.stderr,
        "format": ip.display_formatter.__dict__.get("format"),
        "publish": ip.display_pub.__dict__.get("publish"),
        "showtb": ip.__dict__.get("_showtraceback"),
        "transform": ip.__dict__.get("transform_cell"),
        "store_inputs": ip.history_manager.__dict__.get("store_inputs"),
        "record_factory": logging.getLogRecordFactory(),
        "putenv": os.putenv,
        "post_run_cell": list(ip.events.callbacks["post_run_cell"]),
        "pre_run_cell": list(ip.events.callbacks["pre_run_cell"]),
        "llm_line": "llm" in ip.magics_manager.magics["line"],
        "llm_cell": "llm" in ip.magics_manager.magics["cell"],
        "registry": "SecureLLMMagics" in ip.magics_manager.registry,
        "configurables": "SecureLLMMagics" in [type(c).__name__ for c in ip.configurables],
    }


def test_load_then_unload_leaves_no_hooks(shell):
    before = _hook_snapshot(shell)
    shell.run_line_magic("load_ext", "jupyter_securellm")
    loaded = _hook_snapshot(shell)
    # everything the extension promises is really installed...
    assert loaded["llm_line"] and loaded["llm_cell"] and loaded["registry"]
    assert loaded["format"] is not None and loaded["publish"] is not None
    assert loaded["showtb"] is not None and loaded["transform"] is not None
    assert loaded["store_inputs"] is not None
    assert loaded["putenv"] is not before["putenv"]
    assert loaded["record_factory"] is not before["record_factory"]
    assert len(loaded["post_run_cell"]) == len(before["post_run_cell"]) + 2  # output drain, %llm error
    assert loaded["configurables"]
    # ...and unload removes every bit of it
    shell.run_line_magic("unload_ext", "jupyter_securellm")
    assert _hook_snapshot(shell) == before
    # and a second load works (reload_ext path)
    shell.run_line_magic("load_ext", "jupyter_securellm")
    assert "llm" in shell.magics_manager.magics["cell"]
    shell.run_line_magic("reload_ext", "jupyter_securellm")
    assert "llm" in shell.magics_manager.magics["cell"]
    assert len(shell.events.callbacks["post_run_cell"]) == len(before["post_run_cell"]) + 2


def test_load_imports_nothing_heavy_and_opens_no_connection(tmp_path):
    """In a fresh interpreter: no litellm/hvac/ipywidgets/http.client, and no socket connects at load."""
    code = textwrap.dedent("""
        import socket, sys
        def refuse(*a, **k):
            raise AssertionError("network connection attempted at load")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config
        cfg = Config(); cfg.HistoryManager.hist_file = ":memory:"
        ip = InteractiveShell.instance(config=cfg)
        before = set(sys.modules)
        ip.run_line_magic("load_ext", "jupyter_securellm")
        new = set(sys.modules) - before
        for heavy in ("litellm", "hvac", "requests", "ipywidgets", "http.client", "urllib.request"):
            assert heavy not in sys.modules, heavy
        print("OK", len(new))
    """)
    env = dict(os.environ, JUPYTER_SECURELLM_URL="http://127.0.0.1:9/jupyter-securellm/v1",
               JUPYTER_SECURELLM_KERNEL_TOKEN="t" * 32)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("OK")


def test_print_paths_are_redacted(shell, capsys, fake_key, random_secret, assert_absent):
    from jupyter_securellm.kernel import redaction

    shell.run_line_magic("load_ext", "jupyter_securellm")
    redaction.add_secret(random_secret)
    shell.user_ns.update(k=fake_key, s=random_secret)
    shell.run_cell("print('key:', k)")
    shell.run_cell("import sys\nfor c in k: print(c, end='', flush=True)\nprint()")
    shell.run_cell("for c in s: sys.stdout.write(c); sys.stdout.flush()")
    shell.run_cell("import base64; print(base64.b64encode(s.encode()).decode()); print(s.encode().hex()); print(s[::-1])")
    shell.run_cell("print(k, file=sys.stderr)")
    shell.run_cell("k")  # execute_result via the displayhook
    out, err = capsys.readouterr()
    assert "[REDACTED:" in out and "[REDACTED:" in err
    for value in (fake_key, random_secret):
        assert_absent(out, value, "stdout")
        assert_absent(err, value, "stderr")
    assert "key:" in out  # non-secret text still flows


def test_rich_display_every_text_mime_is_redacted(shell, fake_key, assert_absent, monkeypatch):
    import json

    published = []
    # Spy on the real publisher *below* the hook (installed before load, so the hook wraps it).
    monkeypatch.setattr(type(shell.display_pub), "publish", lambda self, data, *a, **kw: published.append(data))
    shell.run_line_magic("load_ext", "jupyter_securellm")

    class Rich:
        def _repr_html_(self):
            return f"<b>{fake_key}</b>"

        def _repr_markdown_(self):
            return f"**{fake_key}**"

        def _repr_json_(self):
            return {"nested": [{"key": fake_key}]}

        def _repr_latex_(self):
            return f"$\\text{{{fake_key}}}$"

        def _repr_svg_(self):
            return f"<svg><text>{fake_key}</text></svg>"

        def __repr__(self):
            return f"Rich({fake_key})"

    data, _md = shell.display_formatter.format(Rich())
    assert {"text/html", "text/markdown", "application/json", "text/latex", "image/svg+xml", "text/plain"} <= set(data)
    assert_absent(json.dumps(data), fake_key, "display data")
    from IPython.display import display

    display(Rich())
    display({"text/plain": fake_key, "text/html": f"<i>{fake_key}</i>", "application/vnd.custom+json": {"k": fake_key}},
            raw=True)
    assert len(published) == 2 and "[REDACTED:" in published[1]["text/html"]
    assert "[REDACTED:" in published[1]["application/vnd.custom+json"]["k"]
    assert_absent(json.dumps(published), fake_key, "published display data")


@pytest.mark.parametrize("mode", ["Plain", "Context", "Verbose", "Minimal", "Docs"])
def test_tracebacks_redacted_in_every_xmode(shell, capsys, fake_key, mode, assert_absent, monkeypatch):
    seen = []
    # Spy on what reaches the real _showtraceback (installed before load, so the hook wraps it);
    # this checks the traceback hook itself, not the stdout net behind it.
    monkeypatch.setattr(type(shell), "_showtraceback",
                        lambda self, etype, evalue, stb: seen.append((str(evalue), list(stb))))
    shell.run_line_magic("load_ext", "jupyter_securellm")
    shell.run_line_magic("xmode", mode)
    shell.user_ns["k"] = fake_key
    shell.run_cell("def f(secret_local):\n    token = secret_local\n    raise ValueError('bad key ' + token)\nf(k)")
    assert seen, "no traceback was shown"
    evalue, stb = seen[0]
    assert "[REDACTED:" in evalue
    assert_absent(evalue + "\n".join(stb), fake_key, f"traceback ({mode})")
    out, err = capsys.readouterr()
    assert_absent(out + err, fake_key, "output")


def test_logging_is_redacted_even_for_handlers_created_before_load(shell, fake_key, assert_absent):
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("securellm.test")
    log.addHandler(handler)
    log.propagate = False
    try:
        shell.run_line_magic("load_ext", "jupyter_securellm")
        log.warning("calling with key %s", fake_key)
        try:
            raise RuntimeError(f"auth failed for {fake_key}")
        except RuntimeError:
            log.exception("provider said")
        log.warning("stack", stack_info=True)
        text = buf.getvalue()
        assert "calling with key [REDACTED:" in text
        assert "RuntimeError" in text
        assert_absent(text, fake_key, "log output")
        # records still pickle (QueueHandler / multiprocessing)
        rec = log.makeRecord("x", logging.INFO, __file__, 1, "k=%s", (fake_key,), None)
        clone = pickle.loads(pickle.dumps(rec))
        assert fake_key not in clone.getMessage()
    finally:
        log.removeHandler(handler)


def test_env_guard_scrubs_at_load_and_blocks_later(shell, capsys, fake_key, monkeypatch, assert_absent):
    from jupyter_securellm.kernel import client
    from jupyter_securellm.kernel.envguard import EnvGuardError

    token = "tok-" + "a1b2c3d4" * 4
    monkeypatch.setenv("OPENAI_API_KEY", fake_key)
    monkeypatch.setenv("INNOCENT_LOOKING", fake_key)  # caught by its value
    monkeypatch.setenv(client.TOKEN_ENV, token)
    monkeypatch.setenv("HARMLESS_SETTING", "hello")
    shell.run_line_magic("load_ext", "jupyter_securellm")
    for name in ("OPENAI_API_KEY", "INNOCENT_LOOKING", client.TOKEN_ENV):
        assert name not in os.environ
    assert os.environ["HARMLESS_SETTING"] == "hello"
    assert client.kernel_token() == token  # kept in memory for the broker
    child = subprocess.run(["env"], capture_output=True, text=True).stdout
    assert fake_key not in child and token not in child
    assert "HARMLESS_SETTING=hello" in child

    with pytest.raises(EnvGuardError, match="Vault"):
        os.environ["MY_SERVICE_TOKEN"] = "x" * 40
    with pytest.raises(EnvGuardError):
        os.environ["WHATEVER"] = fake_key  # value recognised by the engine
    with pytest.raises(EnvGuardError):
        os.putenv("OPENAI_API_KEY", fake_key)
    with pytest.raises(EnvGuardError):
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "y" * 40)
    assert "MY_SERVICE_TOKEN" not in os.environ and "WHATEVER" not in os.environ
    os.environ["PLAIN_FLAG"] = "1"  # ordinary settings still work
    os.environ["SOME_TOKEN_PATH"] = "/tmp/file"

    capsys.readouterr()
    shell.run_cell(f"%env OPENAI_API_KEY={fake_key}")
    shell.run_cell(f"%set_env ANTHROPIC_API_KEY {fake_key}")
    out, err = capsys.readouterr()
    assert "OPENAI_API_KEY" not in os.environ and "ANTHROPIC_API_KEY" not in os.environ
    assert "env guard" in out + err and "Traceback" not in out + err
    assert_absent(out + err, fake_key)

    shell.run_line_magic("config", "SecureLLMMagics.env_guard = 'warn'")
    os.environ["MY_SERVICE_TOKEN"] = "z" * 40
    assert os.environ["MY_SERVICE_TOKEN"] == "z" * 40
    assert "SecureLLM warning" in capsys.readouterr().err


def test_secret_literal_in_cell_is_warned_and_kept_out_of_history(shell, capsys, fake_key, tmp_path, assert_absent):
    shell.run_line_magic("load_ext", "jupyter_securellm")
    res = shell.run_cell(f"api_key = '{fake_key}'\nn = len(api_key)", store_history=True)
    assert res.success and shell.user_ns["n"] == len(fake_key)  # warn mode: it runs
    out, err = capsys.readouterr()
    assert "contains a secret (openai-api-key" in err
    assert_absent(out + err, fake_key)
    assert all(fake_key not in src for src in shell.history_manager.input_hist_raw)

    shell.run_line_magic("config", "SecureLLMMagics.source_guard = 'block'")
    res = shell.run_cell(f"blocked = '{fake_key}'", store_history=True)
    assert not res.success and "blocked" not in shell.user_ns
    out, err = capsys.readouterr()
    assert "was not run" in out + err and "Traceback" not in out + err

    shell.history_manager.writeout_cache()
    db = sqlite3.connect(tmp_path / "history.sqlite")
    rows = db.execute("SELECT source, source_raw FROM history").fetchall()
    db.close()
    assert rows, "history was not written"
    dump = "\n".join(a + "\n" + b for a, b in rows)
    assert "api_key = '[REDACTED:openai-api-key]'" in dump
    assert_absent(dump, fake_key, "history DB")


def test_secret_value_is_redacted_but_usable(shell, capsys, random_secret, assert_absent):
    from jupyter_securellm.kernel import redaction
    from jupyter_securellm.kernel.secrets import Secret

    shell.run_line_magic("load_ext", "jupyter_securellm")
    s = Secret(random_secret)
    redaction.add_secret(random_secret)
    assert repr(s) == "Secret('[REDACTED:known-secret]')" and str(s) == "[REDACTED:known-secret]"
    assert s == random_secret and s + "" == random_secret and s.encode() == random_secret.encode()
    assert f"x:{s}" == "x:" + random_secret and s.reveal() == random_secret and type(s.reveal()) is str
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(s)
    shell.user_ns["pw"] = s
    shell.run_cell("print(pw); print(f'url=postgres://u:{pw}@db'); pw")
    out, _ = capsys.readouterr()
    assert "url=postgres://u:[REDACTED:" in out
    assert_absent(out, random_secret)


def test_vars_interpolation_is_plain_names_only_and_scanned(shell, fake_key):
    from IPython.core.error import UsageError

    from jupyter_securellm.kernel.client import SecureLLMError

    shell.run_line_magic("load_ext", "jupyter_securellm")
    from jupyter_securellm.kernel.extension import _STATE

    magics = _STATE[id(shell)].magics
    shell.user_ns.update(topic="p-values", n=3, k=fake_key)
    out = magics.build_prompt("Explain {topic} in {n} lines; not {os.environ[HOME]} or {topic.upper} or {x[0]}", True)
    assert out == "Explain p-values in 3 lines; not {os.environ[HOME]} or {topic.upper} or {x[0]}"
    assert magics.build_prompt("Explain {topic}", False) == "Explain {topic}"  # opt-in only
    with pytest.raises(SecureLLMError, match="looks like a secret"):
        magics.build_prompt("use {k}", True)
    from jupyter_securellm.kernel.secrets import Secret

    shell.user_ns["pw"] = Secret("an-unremarkable-value")  # no shape, not registered: refused by type
    with pytest.raises(SecureLLMError, match="holds a secret from secrets.get"):
        magics.build_prompt("use {pw}", True)
    with pytest.raises(UsageError, match="not defined"):
        magics.build_prompt("use {nope}", True)
    with pytest.raises(SecureLLMError, match="secret"):
        magics.build_prompt(f"my key is {fake_key}", False)


def test_errors_are_one_sentence_without_traceback(shell, capsys, monkeypatch):
    monkeypatch.delenv("JUPYTER_SECURELLM_URL", raising=False)
    shell.run_line_magic("load_ext", "jupyter_securellm")
    res = shell.run_cell("%llm some-model hello there")
    assert not res.success
    out, err = capsys.readouterr()
    text = out + err
    assert "SecureLLM (no_broker): This kernel was not started by a Jupyter server" in text
    assert "Traceback" not in text and "File " not in text
    monkeypatch.setenv("JUPYTER_SECURELLM_URL", "http://127.0.0.1:9/jupyter-securellm/v1")  # nothing listens
    shell.run_line_magic("reload_ext", "jupyter_securellm")
    res = shell.run_cell("%%llm -m demo\nhello")
    out, err = capsys.readouterr()
    assert not res.success and "Cannot reach the SecureLLM broker" in out + err and "Traceback" not in out + err


def test_help_and_usage(shell, capsys):
    shell.run_line_magic("load_ext", "jupyter_securellm")
    shell.run_line_magic("llm", "help")
    out, _ = capsys.readouterr()
    for flag in ("--model", "--format", "--system", "--temperature", "--max-tokens", "--output", "--chat",
                 "--no-history", "--vars"):
        assert flag in out
    res = shell.run_cell("%%llm --chat a --no-history\nhi")
    assert not res.success
    assert "either --chat NAME or --no-history" in "".join(capsys.readouterr())
    shell.run_line_magic("llm", "reset")
    assert "Cleared all chat histories" in capsys.readouterr().out
