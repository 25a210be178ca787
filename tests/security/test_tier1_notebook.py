"""Tier 1: a careless user prints, displays, logs, raises and saves a secret from `secrets.get`.

One real kernel started by the server runs the cells; the outputs it sends are put into a
notebook saved through the contents API (save hook), checkpointed and exported with nbconvert.
The secret and its common encodings must appear in none of: iopub/shell messages, the saved
file, its checkpoint, the exports, and the IPython history database.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

SETUP = """%load_ext jupyter_securellm
from jupyter_securellm import secrets
pw = secrets.get("db/warehouse", "password")
raw = pw.reveal()
"""

CELLS = {
    "fstring": "print(f'password={pw}')",
    "format": "print('password={}'.format(raw))",
    "percent_r": "print('password=%r' % raw)",
    "json": "import json; print(json.dumps({'password': raw}))",
    "base64": "import base64; print(base64.b64encode(raw.encode()).decode())",
    "base64url": "import base64; print(base64.urlsafe_b64encode(raw.encode()).decode())",
    "hex": "print(raw.encode().hex())",
    "reversed": "print(''.join(reversed(raw)))",
    "spaced": "print(' '.join(raw))",
    "list": "print(list(raw))",
    "list_expr": "list(raw)",
    "expr": "raw",
    "char_by_char": "import sys\nfor c in raw: sys.stdout.write(c); sys.stdout.flush()",
    "stderr": "import sys; print('pw', raw, file=sys.stderr)",
    "html_table": ("from IPython.display import HTML, display\n"
                   "display(HTML('<table><tr><th>user</th><th>password</th></tr><tr><td>a</td><td>%s</td></tr></table>' % raw))"),
    "markdown": "from IPython.display import Markdown; display(Markdown(f'`{raw}`'))",
    "json_display": "from IPython.display import JSON; display(JSON({'cfg': {'password': raw}}))",
    "exception": "raise ValueError(f'cannot connect with password {raw}')",
    "exception_verbose": "%xmode Verbose\ndef f(secret=raw):\n    1/0\nf()",
    "logging": ("import logging; lg = logging.getLogger('careless'); lg.addHandler(logging.StreamHandler()); "
                "lg.warning('connecting with %s', raw)"),
    "logging_exc": ("import logging\ntry:\n    raise RuntimeError(raw)\nexcept RuntimeError:\n"
                    "    logging.getLogger('careless').exception('failed')"),
    "widget": "import ipywidgets as w; t = w.Text(value=raw); display(t)",
    "password_widget": "import ipywidgets as w; p = w.Password(value=raw); display(p); p.value",
    "subprocess": "import subprocess; print(subprocess.run(['echo', raw], capture_output=True, text=True).stdout)",
    "shell_bang": "!echo {raw}",
    "env_guard": "import os\ntry:\n    os.environ['DB_PASSWORD'] = raw\nexcept Exception as e:\n    print(type(e).__name__)",
}


# Forms left out of the every-form cell (none since the engine learnt list() forms; keep the hook).
SAVE_HOOK_GAPS: set[str] = set()


def _outputs(msgs) -> list:
    """nbformat outputs from iopub messages (what a front end would save)."""
    outs = []
    for m in msgs:
        t, c = m["msg_type"], m["content"]
        if t == "stream":
            outs.append(nbformat.v4.new_output("stream", name=c["name"], text=c["text"]))
        elif t in ("display_data", "execute_result"):
            o = nbformat.v4.new_output(t, data=c["data"], metadata=c.get("metadata", {}))
            if t == "execute_result":
                o["execution_count"] = c.get("execution_count")
            outs.append(o)
        elif t == "error":
            outs.append(nbformat.v4.new_output("error", ename=c["ename"], evalue=c["evalue"], traceback=c["traceback"]))
    return outs


@pytest.fixture
def careless(stack, kernel, rt):
    """Run SETUP and every careless cell once; return (kernel, {name: messages}, secret)."""
    rt.run_py(kernel, SETUP)
    results = {name: kernel.run(code, allow_error=True, timeout=60) for name, code in CELLS.items()}
    return kernel, results, stack.db_password


def test_careless_output_is_redacted_in_every_message(careless, rt):
    kernel, results, secret = careless
    for name, msgs in results.items():
        rt.assert_no_secret(kernel.text(msgs), secret, f"kernel messages of cell {name!r}")
    # the cells did run and the redactor did its job (not an empty output)
    assert "[REDACTED" in kernel.text(results["format"])
    assert "[REDACTED" in kernel.text(results["html_table"])
    assert "ValueError" in kernel.text(results["exception"])
    rt.assert_no_secret(kernel.text(kernel.all_messages), secret, "any message of the session")


def test_saved_checkpointed_and_exported_notebook_holds_no_secret(careless, stack, rt, tmp_path):
    kernel, results, secret = careless
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(SETUP))
    for name, msgs in results.items():
        cell = nbformat.v4.new_code_cell(CELLS[name])
        cell.outputs = _outputs(msgs)
        nb.cells.append(cell)
    # what a front end that lost the kernel redaction would save: the raw value in outputs and widget state
    raw_cell = nbformat.v4.new_code_cell("pw")
    raw_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"password={secret}\n"),
                        nbformat.v4.new_output("display_data", data={"text/html": f"<td>{secret}</td>",
                                                                     "text/plain": repr(secret)})]
    nb.cells.append(raw_cell)
    forms = {k: v for k, v in rt.secret_forms(secret).items() if k not in SAVE_HOOK_GAPS}
    enc_cell = nbformat.v4.new_code_cell("# " + " ".join(forms.values()))  # a pasted secret, every form
    enc_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="\n".join(forms.values())),
                        nbformat.v4.new_output("error", ename="ValueError", evalue=forms["hex"],
                                               traceback=[f"\x1b[0;31mValueError\x1b[0m: {v}" for v in forms.values()])]
    enc_cell.metadata["tags"] = [forms["base64"]]
    nb.cells.append(enc_cell)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0,
                              "state": {"abc": {"model_name": "PasswordModel", "state": {"value": secret}}}}}
    name = "careless.ipynb"
    k = kernel
    k.rest("PUT", f"api/contents/{name}", {"type": "notebook", "format": "json", "content": nb})
    cp = k.rest("POST", f"api/contents/{name}/checkpoints")
    nbdir = stack.workdir / "notebooks"
    saved = (nbdir / name).read_text()
    checkpoint = next((nbdir / ".ipynb_checkpoints").glob("careless-*.ipynb")).read_text()
    assert cp["id"] and len(saved) > 2000
    rt.assert_no_secret(saved, secret, "the saved notebook")
    rt.assert_no_secret(checkpoint, secret, "its checkpoint")
    assert "[REDACTED" in saved
    exports = {}
    for fmt in ("html", "markdown", "script"):
        out = tmp_path / f"export-{fmt}"
        subprocess.run([str(Path(sys.executable).parent / "jupyter-nbconvert"), "--to", fmt, str(nbdir / name),
                        "--output-dir", str(out)], check=True, capture_output=True, timeout=120)
        exports[fmt] = "".join(p.read_text(errors="replace") for p in out.iterdir() if p.is_file())
        assert exports[fmt], fmt
        rt.assert_no_secret(exports[fmt], secret, f"nbconvert --to {fmt}")
    # the contents API read-back (what JupyterLab shows after reload)
    back = json.dumps(k.rest("GET", f"api/contents/{name}?content=1"))
    rt.assert_no_secret(back, secret, "the contents API read-back")


def test_history_db_holds_no_pasted_secret(careless, stack, rt):
    """A user pastes the value itself into a cell; the history DB must store the redacted source."""
    kernel, _, secret = careless
    kernel.run(f"conn = 'postgresql://analyst:{secret}@db/warehouse'", allow_error=True)
    kernel.run("get_ipython().history_manager.writeout_cache()", allow_error=True)
    dbs = list((stack.workdir / "ipython").rglob("history.sqlite"))
    assert dbs, "no IPython history database found"
    blob = b"".join(p.read_bytes() for p in dbs for p in [p] + list(p.parent.glob("history.sqlite-*")))
    rt.assert_no_secret(blob.decode("latin-1"), secret, "the IPython history database")


def test_save_hook_scrubs_list_forms_of_a_served_secret(careless, stack, rt):
    kernel, _, secret = careless  # the server served this secret, so its redactor knows it
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("list(pw)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=str(list(secret)) + "\n"),
                    nbformat.v4.new_output("execute_result", data={"text/plain": json.dumps(list(secret))})]
    cell.outputs[1]["execution_count"] = 1
    nb.cells.append(cell)
    kernel.rest("PUT", "api/contents/listed.ipynb", {"type": "notebook", "format": "json", "content": nb})
    rt.assert_no_secret((stack.workdir / "notebooks" / "listed.ipynb").read_text(), secret, "the saved notebook")
