"""Regenerate the golden notebooks: `python tests/notebook/golden/make_golden.py`.

Inputs hold templates `{{rule-id:seed}}` (never a key-shaped literal); the tests fill them with
`jupyter_securellm.detect.fake_secret(rule-id, seed)`. The expected outputs are the inputs with each
template that must be scrubbed replaced *textually* by its placeholder (templates that must survive,
such as image data and allowlisted lines, stay), so they do not depend on the scrubber under test.
"""
import json
import pathlib
import re

import nbformat
from nbformat.v4 import (new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell)

HERE = pathlib.Path(__file__).parent
T = re.compile(r"\{\{([a-z0-9-]+):(\d+)\}\}")


def expected(text: str, keep=()) -> str:
    def sub(m):
        return m.group(0) if m.group(0) in keep else f"[REDACTED:{m.group(1)}]"

    return T.sub(sub, text)


def write(name, text, keep=()):
    (HERE / f"{name}.in.ipynb").write_text(text, encoding="utf-8")
    (HERE / f"{name}.out.ipynb").write_text(expected(text, keep), encoding="utf-8")


def ids(nb):
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i}"
    return nb


# 1. every output type
png = "iVBORw0KGgo{{openai-api-key:9}}AAAASUVORK5CYII="
nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
nb.cells = [
    new_markdown_cell("# Setup\nPost to https://hooks.slack.com/services/{{slack-webhook:1}} when done.\n"),
    new_code_cell(
        'import os\nclient = OpenAI(api_key="{{openai-api-key:1}}")\nprint(os.environ["HOME"])\n',
        execution_count=1,
        outputs=[new_output("stream", name="stdout", text="using token {{github-token:1}}\nok\n")],
    ),
    new_code_cell(
        "connect()\n",
        execution_count=2,
        outputs=[new_output(
            "error", ename="AuthError", evalue="bad key {{anthropic-api-key:1}}",
            traceback=["\u001b[0;31mAuthError\u001b[0m: bad key {{anthropic-api-key:1}}", "  File \"x.py\", line 1"],
        )],
    ),
    new_code_cell(
        "show()\n",
        execution_count=3,
        outputs=[
            new_output("execute_result", execution_count=3, data={"text/plain": "AccessKeyId: {{aws-access-key-id:1}}"}),
            new_output("display_data", data={
                "text/html": "<table>\n<tr><td>token</td><td>{{huggingface-token:1}}</td></tr>\n</table>\n",
                "image/png": png,
                "application/json": {"auth": {"token": "{{github-token:2}}"}, "n": 1},
            }),
        ],
    ),
    new_raw_cell("Authorization: Bearer {{jwt:1}}\n"),
]
write("outputs", nbformat.writes(ids(nb)) + "\n", keep={"{{openai-api-key:9}}"})

# 2. metadata, attachments and widget state
nb = new_notebook()
nb.metadata["widgets"] = {
    "application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0,
        "state": {"7b5c": {"model_name": "TextModel", "model_module": "@jupyter-widgets/controls",
                            "state": {"value": "{{openai-api-key:2}}", "description": "API key"}}},
    }
}
md = new_markdown_cell("![plot](attachment:plot.png)\nSee attachment:notes.txt\n")
md["attachments"] = {
    "plot.png": {"image/png": "iVBORw0KGgo{{github-token:9}}"},
    "notes.txt": {"text/plain": ["first line\n", "key={{groq-api-key:1}}\n"]},
}
md["metadata"] = {"tags": ["setup"], "deploy": {"token": "{{gitlab-token:1}}"}}
nb.cells = [md, new_code_cell("x = 1\n", metadata={"collapsed": False})]
write("metadata", nbformat.writes(ids(nb)) + "\n", keep={"{{github-token:9}}"})

# 3. allowlisted lines: nothing changes
nb = new_notebook()
nb.cells = [new_code_cell(
    'TEST_KEY = "{{openai-api-key:3}}"  # securellm: allow\n'
    "# securellm: allow-next-line\n"
    'OTHER = "{{github-token:3}}"\n'
    'LEGACY = "{{anthropic-api-key:3}}"  # pragma: allowlist secret\n'
)]
text = nbformat.writes(ids(nb)) + "\n"
(HERE / "allowlisted.in.ipynb").write_text(text, encoding="utf-8")
(HERE / "allowlisted.out.ipynb").write_text(text, encoding="utf-8")

# 4. a layout nbformat would not write: indent 2, keys unsorted, \u escapes, minor 2, no final newline
layout = {
    "nbformat": 4,
    "nbformat_minor": 2,
    "metadata": {"title": "caf\u00e9 \u2014 notes", "language_info": {"name": "python"}},
    "cells": [
        {"source": 'key = "{{openai-api-key:4}}"  # caf\u00e9\nprint(key)', "cell_type": "code",
         "metadata": {}, "outputs": [], "execution_count": None},
        {"cell_type": "markdown", "metadata": {}, "source": ["caf\u00e9 \u2603\n", "no secret here"]},
    ],
}
write("layout", json.dumps(layout, indent=2, ensure_ascii=True))
