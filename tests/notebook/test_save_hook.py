"""The save hook through a real Jupyter server and its contents REST API (JupyterLab's save path).

Trust tier 1: a key pasted into a cell, printed to stdout, shown in a traceback, rendered as HTML or
held in widget state never reaches the file on disk or its checkpoint; known secrets the server read
from Vault are caught too. In block mode the save is refused with a message that names rule, cell
and line (never the value) and the file on disk is unchanged.
"""
import base64
import json
import logging
import pathlib
import secrets as pysecrets

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from jupyter_securellm.server.contents import SaveHook


@pytest.fixture
def save_mode():
    return "redact"


@pytest.fixture
def jp_server_config(save_mode):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_securellm": True}},
        "SecureLLM": {"save_hook_mode": save_mode, "preload_litellm": False, "harden_process": False},
    }


@pytest.fixture
def keys(kit):
    return {
        "source": kit.secret("openai-api-key", 31),
        "stream": kit.secret("github-token", 31),
        "traceback": kit.secret("anthropic-api-key", 31),
        "html": kit.secret("huggingface-token", 31),
        "widget": kit.secret("groq-api-key", 31),
    }


def leaky_notebook(keys) -> dict:
    """A notebook as JupyterLab sends it (strings, not line lists)."""
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# Analysis"),
        new_code_cell(
            f'import openai\nclient = openai.OpenAI(api_key="{keys["source"]}")',
            execution_count=1,
            outputs=[
                new_output("stream", name="stdout", text=f"token={keys['stream']}\n"),
                new_output("error", ename="AuthenticationError", evalue="Incorrect API key",
                           traceback=["\x1b[0;31m---------\x1b[0m",
                                      f"\x1b[0;31mAuthenticationError\x1b[0m: Incorrect API key provided: {keys['traceback']}"]),
                new_output("display_data", data={"text/html": f"<pre>HF_TOKEN={keys['html']}</pre>",
                                                 "text/plain": "<IPython.core.display.HTML object>"}),
            ],
        ),
    ]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0,
        "state": {"a1b2": {"model_name": "PasswordModel", "model_module": "@jupyter-widgets/controls",
                           "model_module_version": "2.0.0", "state": {"value": keys["widget"]}}}}}
    return nb


async def put(jp_fetch, path, model):
    return await jp_fetch("api", "contents", path, method="PUT", body=json.dumps(model), raise_error=False)


def all_files(root: pathlib.Path) -> dict:
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8", errors="replace")
            for p in root.rglob("*") if p.is_file()}


async def test_redact_mode_disk_and_checkpoint_hold_no_secret(jp_fetch, jp_root_dir, keys, jp_serverapp):
    r = await put(jp_fetch, "leak.ipynb", {"type": "notebook", "format": "json", "content": leaky_notebook(keys)})
    assert r.code == 201, r.body
    r = await jp_fetch("api", "contents", "leak.ipynb", "checkpoints", method="POST", body="")
    assert r.code == 201
    files = all_files(jp_root_dir)
    assert "leak.ipynb" in files and ".ipynb_checkpoints/leak-checkpoint.ipynb" in files
    for name, text in files.items():
        for where, key in keys.items():
            assert key not in text, f"{where} key found in {name}"
    on_disk = json.loads(files["leak.ipynb"])
    cell = on_disk["cells"][1]
    assert "".join(cell["source"]).endswith('api_key="[REDACTED:openai-api-key]")')
    assert cell["outputs"][0]["text"] == ["token=[REDACTED:github-token]\n"]
    assert cell["outputs"][1]["traceback"][1].endswith("provided: [REDACTED:anthropic-api-key]")
    assert cell["outputs"][2]["data"]["text/html"] == ["<pre>HF_TOKEN=[REDACTED:huggingface-token]</pre>"]
    widget = on_disk["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]["a1b2"]
    assert widget["state"]["value"] == "[REDACTED:groq-api-key]"
    # the notebook is still a valid notebook the server reads back
    r = await jp_fetch("api", "contents", "leak.ipynb")
    assert json.loads(r.body)["content"]["cells"][0]["source"] == "# Analysis"


async def test_known_secret_from_vault_is_scrubbed(jp_fetch, jp_root_dir, jp_serverapp):
    """A value the server read from Vault (registered with its redactor) has no recognisable shape."""
    redactor = jp_serverapp.web_app.settings["jupyter_securellm_redactor"]
    db_password = pysecrets.token_urlsafe(18)
    redactor.add_secret(db_password)  # what the broker does for every value read from Vault
    nb = new_notebook()
    nb.cells = [new_code_cell("print(pw)", outputs=[new_output("stream", text=f"password is {db_password}\n")])]
    r = await put(jp_fetch, "db.ipynb", {"type": "notebook", "format": "json", "content": nb})
    assert r.code == 201
    text = (jp_root_dir / "db.ipynb").read_text()
    assert db_password not in text and "[REDACTED:known-secret]" in text


async def test_text_files_are_scrubbed_too(jp_fetch, jp_root_dir, kit):
    key = kit.secret("openai-api-key", 32)
    r = await put(jp_fetch, "prod.env", {"type": "file", "format": "text", "content": f"OPENAI_API_KEY={key}\nDEBUG=1\n"})
    assert r.code == 201, r.body
    assert (jp_root_dir / "prod.env").read_text() == "OPENAI_API_KEY=[REDACTED:openai-api-key]\nDEBUG=1\n"
    b64 = base64.b64encode(f"token: {key}\n".encode()).decode()
    r = await put(jp_fetch, "conf.yaml", {"type": "file", "format": "base64", "content": b64})
    assert r.code == 201
    assert (jp_root_dir / "conf.yaml").read_text() == "token: [REDACTED:openai-api-key]\n"
    # an invalid byte does not hide the rest of the file, and survives
    raw = b"log \xff\n" + f"key={key}\n".encode()
    r = await put(jp_fetch, "run.txt", {"type": "file", "format": "base64", "content": base64.b64encode(raw).decode()})
    assert r.code == 201
    assert (jp_root_dir / "run.txt").read_bytes() == b"log \xff\nkey=[REDACTED:openai-api-key]\n"
    # any file saved as text is scanned, whatever its name
    for name in ("query.sql", "data.csv", "Dockerfile", "notes"):
        r = await put(jp_fetch, name, {"type": "file", "format": "text", "content": f"-- {name}\nk,{key}\n"})
        assert r.code == 201
        assert (jp_root_dir / name).read_text() == f"-- {name}\nk,[REDACTED:openai-api-key]\n", name
    # base64 under a name not on the list: an upload of unknown type, left as is
    r = await put(jp_fetch, "blob.bin", {"type": "file", "format": "base64",
                                         "content": base64.b64encode(f"k,{key}\n".encode()).decode()})
    assert r.code == 201 and key in (jp_root_dir / "blob.bin").read_text()


async def test_svg_output_is_scrubbed_binary_images_are_not(jp_fetch, jp_root_dir, kit):
    key = kit.secret("openai-api-key", 35)
    png = base64.b64encode(b"\x89PNG\r\n" + key.encode()).decode()
    nb = new_notebook()
    nb.cells = [new_code_cell("plot()", outputs=[new_output("display_data", data={
        "image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg"><title>api_key={key}</title></svg>',
        "image/png": png, "text/plain": "<Figure>"})])]
    r = await put(jp_fetch, "plot.ipynb", {"type": "notebook", "format": "json", "content": nb})
    assert r.code == 201
    saved = json.loads((jp_root_dir / "plot.ipynb").read_text())["cells"][0]["outputs"][0]["data"]
    assert key not in "".join(saved["image/svg+xml"]) and "[REDACTED:openai-api-key]" in "".join(saved["image/svg+xml"])
    assert saved["image/png"] == png


async def test_users_own_pre_save_hook_still_runs(jp_fetch, jp_root_dir, jp_serverapp, keys):
    seen = []

    def user_hook(model, path, contents_manager, **kwargs):
        seen.append(path)

    cm = jp_serverapp.contents_manager
    cm.pre_save_hook = user_hook
    assert any(isinstance(h, SaveHook) for h in cm._pre_save_hooks)
    r = await put(jp_fetch, "u.ipynb", {"type": "notebook", "format": "json", "content": leaky_notebook(keys)})
    assert r.code == 201 and seen == ["u.ipynb"]
    assert keys["source"] not in (jp_root_dir / "u.ipynb").read_text()


async def test_scrubber_failure_refuses_the_save(jp_fetch, jp_root_dir, jp_serverapp, keys, monkeypatch):
    hook = next(h for h in jp_serverapp.contents_manager._pre_save_hooks if isinstance(h, SaveHook))

    def boom(text):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(hook.engine, "scan", boom)
    r = await put(jp_fetch, "f.ipynb", {"type": "notebook", "format": "json", "content": leaky_notebook(keys)})
    assert r.code == 500
    body = json.loads(r.body)
    assert "scrubber failed" in body["message"] and "nothing was written" in body["message"]
    assert not (jp_root_dir / "f.ipynb").exists()


async def test_malformed_notebook_is_refused(jp_fetch, jp_root_dir):
    r = await put(jp_fetch, "m.ipynb", {"type": "notebook", "format": "json",
                                        "content": {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                                    "cells": [{"cell_type": "code", "metadata": {}, "outputs": []}]}})
    assert r.code == 500 and "missing field 'source'" in json.loads(r.body)["message"]
    assert not (jp_root_dir / "m.ipynb").exists()


@pytest.mark.parametrize("save_mode", ["block"])
async def test_block_mode_refuses_and_keeps_disk(jp_fetch, jp_root_dir, keys, save_mode):
    clean = new_notebook()
    clean.cells = [new_code_cell("x = 1")]
    r = await put(jp_fetch, "b.ipynb", {"type": "notebook", "format": "json", "content": clean})
    assert r.code == 201
    before = (jp_root_dir / "b.ipynb").read_bytes()
    r = await put(jp_fetch, "b.ipynb", {"type": "notebook", "format": "json", "content": leaky_notebook(keys)})
    assert r.code == 400
    body = r.body.decode()
    msg = json.loads(body)["message"]
    assert "Save refused" in msg and "5 secret(s)" in msg
    assert "openai-api-key at cells[1].source line 2" in msg
    assert "github-token at cells[1].outputs[0].text line 1" in msg
    assert "groq-api-key at metadata.widgets" in msg
    for key in keys.values():
        assert key not in body
    assert (jp_root_dir / "b.ipynb").read_bytes() == before
    # a new file is not created either
    r = await put(jp_fetch, "new.ipynb", {"type": "notebook", "format": "json", "content": leaky_notebook(keys)})
    assert r.code == 400 and not (jp_root_dir / "new.ipynb").exists()
    r = await put(jp_fetch, "x.env", {"type": "file", "format": "text", "content": f"K={keys['stream']}\n"})
    assert r.code == 400 and "github-token at line 1" in json.loads(r.body)["message"]
    assert not (jp_root_dir / "x.env").exists()


@pytest.mark.parametrize("save_mode", ["warn"])
async def test_warn_mode_saves_and_logs_without_value(jp_fetch, jp_root_dir, keys, save_mode, caplog):
    caplog.set_level(logging.WARNING)
    r = await put(jp_fetch, "w.ipynb", {"type": "notebook", "format": "json", "content": leaky_notebook(keys)})
    assert r.code == 201
    assert keys["source"] in (jp_root_dir / "w.ipynb").read_text()  # warn means saved as is
    assert "save_hook_mode=warn" in caplog.text and "openai-api-key" in caplog.text
    for key in keys.values():
        assert key not in caplog.text


async def _upload_in_chunks(jp_fetch, name, data: bytes, size: int):
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    last = None
    for n, part in enumerate(parts, start=1):
        chunk = -1 if n == len(parts) else n
        last = await put(jp_fetch, name, {"type": "file", "format": "base64", "chunk": chunk,
                                          "content": base64.b64encode(part).decode()})
        if chunk != -1:
            assert last.code in (200, 201), last.body
    return last


async def test_chunked_upload_is_scanned_whole(jp_fetch, jp_root_dir, kit):
    key = kit.secret("anthropic-api-key", 33)
    data = ("x" * 50 + "\n") * 40 + f"ANTHROPIC_API_KEY={key}\n" + ("y" * 50 + "\n") * 40
    cut = data.index(key) + 20  # a chunk boundary inside the key
    r = await _upload_in_chunks(jp_fetch, "big.txt", data.encode(), cut)
    assert r.code in (200, 201), r.body
    on_disk = (jp_root_dir / "big.txt").read_text()
    assert key not in on_disk and on_disk == data.replace(key, "[REDACTED:anthropic-api-key]")
    # an ordinary save of the same path afterwards is scanned before writing, as usual
    r = await put(jp_fetch, "big.txt", {"type": "file", "format": "text", "content": f"k={key}\n"})
    assert r.code == 200 and (jp_root_dir / "big.txt").read_text() == "k=[REDACTED:anthropic-api-key]\n"


@pytest.mark.parametrize("save_mode", ["block"])
async def test_chunked_upload_with_a_secret_is_removed_in_block_mode(jp_fetch, jp_root_dir, kit, save_mode):
    key = kit.secret("groq-api-key", 34)
    data = f"header\nGROQ_API_KEY={key}\n" + "z\n" * 200
    r = await _upload_in_chunks(jp_fetch, "up.json", data.encode(), 64)
    assert r.code == 500 and "Save refused" in json.loads(r.body)["message"]
    assert key not in r.body.decode()
    assert not (jp_root_dir / "up.json").exists()
