"""The quickstart as a new user runs it: `examples/quickstart.ipynb`, "Run All Cells" in JupyterLab, in
Debian's Chromium (Playwright, `jupyter_securellm.testing.lab`). Output is whole and in order: no split
placeholder, prints before the result they precede, and no secret anywhere on the page.

JupyterLab runs without our labextension (`lab_with_extension` False): what is checked here is the
kernel's output, which does not depend on our front end.
"""
from __future__ import annotations

import json
import re

import pytest

from jupyter_securellm.demo import REPO
from jupyter_securellm.testing.lab import (  # noqa: F401 - fixtures
    lab_browser,
    lab_no_asyncio_loop,  # pytest-jupyter's autouse loop fixtures fight Playwright's sync API
    lab_no_server_cleanup,
    lab_page,
    lab_server,
    lab_server_config,
    shot,
)

pytestmark = pytest.mark.slow

PLACEHOLDER = re.compile(r"\[REDACTED:[a-z0-9-]+\]")


@pytest.fixture(scope="module")
def lab_with_extension():
    return False


def _cell_index(startswith: str) -> int:
    nb = json.loads((REPO / "examples" / "quickstart.ipynb").read_text())
    return next(i for i, c in enumerate(nb["cells"]) if "".join(c["source"]).startswith(startswith))


def test_quickstart_run_all_in_chromium(lab_page, lab_server):
    page = lab_page.page
    page.set_viewport_size({"width": 1200, "height": 1800})
    lab_page.open_notebook("quickstart.ipynb", timeout=180)
    lab_page.run_command("Run All Cells")
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
                .map(p => p.textContent);
            return prompts.length > 0 && prompts.every(t => /\\[\\d+\\]/.test(t));
        }""", timeout=300_000)
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")

    def outputs(i):
        return [t.strip() for t in cells.nth(i).locator(".jp-OutputArea-output").all_inner_texts()]

    header = _cell_index("## Secrets for your own code")
    secret_cell = _cell_index("from jupyter_securellm import secrets")
    catches = _cell_index("import base64, logging, sys, traceback")
    # `print(pw); pw`: the print, then the result; each placeholder whole
    assert outputs(secret_cell) == ["[REDACTED:known-secret]", "Secret('[REDACTED:known-secret]')"]
    # "what redaction catches": three encodings, the one-char-at-a-time print, the log line, the traceback
    got = outputs(catches)
    assert got[0].startswith("[REDACTED:known-secret] [REDACTED:known-secret] [REDACTED:known-secret]")
    assert "[REDACTED:known-secret]" in got[0].splitlines()[-1]  # the character-by-character print
    assert got[1] == "connecting with [REDACTED:known-secret]"
    assert got[2].startswith("Traceback") and got[2].endswith("ConnectionError: login failed for [REDACTED:known-secret]")
    # no garbled placeholder anywhere on the page, and no secret
    for i in range(cells.count()):
        for text in outputs(i):
            rest = PLACEHOLDER.sub("", text)
            assert "[REDACTED" not in rest and "known-secret]" not in rest, (i, text)
    html = page.content()
    assert lab_server.stack.db_password not in html and lab_server.stack.provider_key not in html
    # a picture of the secrets cells for docs/kernel.md
    cells.nth(header).evaluate("e => e.scrollIntoView({block: 'start'})")
    boxes = [cells.nth(i).bounding_box() for i in range(header, catches + 1)]
    x0, y0 = min(b["x"] for b in boxes), min(b["y"] for b in boxes)
    x1, y1 = max(b["x"] + b["width"] for b in boxes), max(b["y"] + b["height"] for b in boxes)
    shot_path = shot(page, "quickstart-secrets-full")
    page.screenshot(path=str(shot_path.with_name("quickstart-secrets.png")),
                    clip={"x": x0, "y": y0, "width": x1 - x0, "height": min(y1 - y0, 1700)})
