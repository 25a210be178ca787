"""`POST /jupyter-securellm/v1/scan` and the save outcome the front end reads, through a real server.

Trust tier 1: the front end learns where secrets are (rule, cell, field, line, column, fingerprint)
and what a save did to them, and no answer ever carries a value.
"""
import json
import secrets as pysecrets
import subprocess
import sys

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from jupyter_securellm.detect import fake_secret


@pytest.fixture
def save_mode():
    return "redact"


@pytest.fixture
def jp_server_config(save_mode):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_securellm": True}},
        "IdentityProvider": {"token": "secret-token-for-lab-tests"},
        "SecureLLM": {"save_hook_mode": save_mode, "preload_litellm": False, "harden_process": False},
    }


@pytest.fixture
def keys():
    return {"source": fake_secret("openai-api-key"), "stream": fake_secret("github-token"),
            "html": fake_secret("huggingface-token")}


def leaky(keys) -> dict:
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# Title"),
        new_code_cell(f'x = 1\nclient = make(api_key="{keys["source"]}")', execution_count=1, outputs=[
            new_output("stream", name="stdout", text=f"token={keys['stream']}\n"),
            new_output("display_data", data={"text/html": f"<b>{keys['html']}</b>", "text/plain": "<HTML>"}),
        ]),
        new_code_cell("y = 2"),
    ]
    return nb


async def scan(jp_fetch, body, redact=False, **kw):
    params = {"redact": "true"} if redact else {}
    return await jp_fetch("jupyter-securellm", "v1", "scan", method="POST", body=json.dumps(body),
                          params=params, raise_error=False, **kw)


def assert_no_value(text: str, keys: dict):
    for where, key in keys.items():
        assert key not in text, f"the {where} key is in the answer"


async def test_scan_reports_places_never_values(jp_fetch, keys):
    nb = leaky(keys)
    r = await scan(jp_fetch, {"type": "notebook", "path": "a.ipynb", "content": nb})
    assert r.code == 200, r.body
    text = r.body.decode()
    assert_no_value(text, keys)
    answer = json.loads(text)
    assert answer["save_hook_mode"] == "redact"
    got = {(f["rule_id"], f["cell"], f["field"], f["line"], f["column"], f["output"]) for f in answer["findings"]}
    col = len('client = make(api_key="') + 1
    assert got == {
        ("openai-api-key", 1, "source", 2, col, None),
        ("github-token", 1, "outputs[0].text", 1, len("token=") + 1, 0),
        ("huggingface-token", 1, "outputs[1].data.text/html", 1, len("<b>") + 1, 1),
    }
    for f in answer["findings"]:
        assert f["cell_id"] == nb.cells[1].id
        assert len(f["fingerprint"]) >= 8
    src = next(f for f in answer["findings"] if f["field"] == "source")
    assert (src["end_line"], src["end_column"]) == (2, col + len(keys["source"]))
    assert "redactions" not in answer


async def test_scan_with_redact_returns_the_scrubbed_fields(jp_fetch, keys):
    nb = leaky(keys)
    r = await scan(jp_fetch, nb, redact=True)  # a bare notebook works too
    assert r.code == 200, r.body
    assert_no_value(r.body.decode(), keys)
    red = {tuple(x["path"]): x for x in json.loads(r.body)["redactions"]}
    assert set(red) == {("source",), ("outputs", 0, "text"), ("outputs", 1, "data", "text/html")}
    assert red[("source",)]["value"] == 'x = 1\nclient = make(api_key="[REDACTED:openai-api-key]")'
    assert red[("outputs", 0, "text")]["value"] == "token=[REDACTED:github-token]\n"
    assert red[("outputs", 1, "data", "text/html")]["value"] == "<b>[REDACTED:huggingface-token]</b>"
    assert all(x["cell"] == 1 and x["cell_id"] == nb.cells[1].id for x in red.values())


async def test_a_clean_notebook_has_no_findings(jp_fetch):
    nb = new_notebook()
    nb.cells = [new_code_cell("import os\nprint(os.getcwd())")]
    r = await scan(jp_fetch, {"content": nb}, redact=True)
    assert r.code == 200 and json.loads(r.body)["findings"] == [] and json.loads(r.body)["redactions"] == []


async def test_known_secret_from_vault_is_found(jp_fetch, jp_serverapp):
    value = "pw-" + pysecrets.token_urlsafe(18)
    jp_serverapp.web_app.settings["jupyter_securellm_redactor"].add_secret(value)
    nb = new_notebook()
    nb.cells = [new_code_cell("print(pw)", outputs=[new_output("stream", text=f"{value}\n")])]
    r = await scan(jp_fetch, {"content": nb})
    assert value not in r.body.decode()
    assert [f["rule_id"] for f in json.loads(r.body)["findings"]] == ["known-secret"]


@pytest.mark.parametrize("body, message", [
    ("[1, 2]", "Send a JSON object"),
    ('{"type": "file", "content": "x"}', "Only notebooks"),
    ('{"content": {"nbformat": 3}}', "nbformat 3 is not supported"),
    ("{not json", "not valid JSON"),
])
async def test_bad_input_gets_a_clear_error(jp_fetch, body, message):
    r = await jp_fetch("jupyter-securellm", "v1", "scan", method="POST", body=body, raise_error=False)
    assert r.code == 400
    err = json.loads(r.body)["error"]
    assert err["type"] == "invalid_request" and message in err["message"], err


async def test_scan_needs_jupyter_auth(jp_fetch, keys):
    r = await scan(jp_fetch, leaky(keys), headers={"Authorization": "token wrong"})
    assert r.code == 403
    assert_no_value(r.body.decode(), keys)


async def test_scan_applies_the_baseline_of_the_notebooks_folder(jp_fetch, jp_root_dir, keys):
    nb = leaky(keys)
    (jp_root_dir / "proj").mkdir()
    path = jp_root_dir / "proj" / "n.ipynb"
    path.write_text(json.dumps(nb))
    # accept every current finding into the folder's baseline, as a user would with the CLI
    subprocess.run([sys.executable, "-m", "jupyter_securellm", "scan", "--write-baseline",
                    str(jp_root_dir / "proj" / ".securellm-baseline.json"), str(path)], check=True,
                   capture_output=True, cwd=jp_root_dir / "proj")
    r = await scan(jp_fetch, {"type": "notebook", "path": "proj/n.ipynb", "content": nb})
    assert json.loads(r.body)["findings"] == []
    r = await scan(jp_fetch, {"type": "notebook", "path": "other.ipynb", "content": nb})
    assert len(json.loads(r.body)["findings"]) == 3


# ---------------------------------------------------------------- save outcome for the front end

async def put(jp_fetch, path, model):
    return await jp_fetch("api", "contents", path, method="PUT", body=json.dumps(model), raise_error=False)


async def test_a_scrubbed_save_returns_what_was_done(jp_fetch, jp_root_dir, keys):
    r = await put(jp_fetch, "s.ipynb", {"type": "notebook", "format": "json", "content": leaky(keys)})
    assert r.code == 201
    text = r.body.decode()
    assert_no_value(text, keys)
    outcome = json.loads(text)["securellm"]
    assert outcome["action"] == "redacted" and outcome["findings"] == 3 and outcome["cells"] == [1]
    assert outcome["rules"] == ["github-token", "huggingface-token", "openai-api-key"]
    assert "openai-api-key at cells[1].source line 2" in outcome["places"]
    assert "_path" not in outcome
    assert_no_value((jp_root_dir / "s.ipynb").read_text(), keys)
    # a clean save right after carries no outcome (nothing leaks from one save into the next)
    clean = new_notebook()
    r = await put(jp_fetch, "s.ipynb", {"type": "notebook", "format": "json", "content": clean})
    assert r.code == 200 and "securellm" not in json.loads(r.body)


async def test_a_scrubbed_text_file_save_returns_the_outcome(jp_fetch, keys):
    r = await put(jp_fetch, "k.env", {"type": "file", "format": "text", "content": f"K={keys['stream']}\n"})
    outcome = json.loads(r.body)["securellm"]
    assert outcome["action"] == "redacted" and outcome["findings"] == 1 and outcome["cells"] == []


@pytest.mark.parametrize("save_mode", ["warn"])
async def test_warn_mode_outcome(jp_fetch, keys, save_mode):
    r = await put(jp_fetch, "w.ipynb", {"type": "notebook", "format": "json", "content": leaky(keys)})
    assert r.code == 201
    assert json.loads(r.body)["securellm"]["action"] == "warned"


@pytest.mark.parametrize("save_mode", ["block"])
async def test_block_mode_scan_says_block(jp_fetch, keys, save_mode):
    r = await put(jp_fetch, "b.ipynb", {"type": "notebook", "format": "json", "content": leaky(keys)})
    assert r.code == 400
    r = await scan(jp_fetch, {"content": leaky(keys)})
    assert json.loads(r.body)["save_hook_mode"] == "block"
