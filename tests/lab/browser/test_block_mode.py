"""Block mode in the browser: a save holding a key is refused, the front end says where and offers Redact
now; after it, the save goes through and the file holds no key. Its own JupyterLab (save_hook_mode=block)."""
from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell

from jupyter_securellm.detect import fake_secret

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab_server_config():
    return {"SecureLLM": {"save_hook_mode": "block"}}


def test_a_refused_save_says_where_and_redact_now_lets_it_through(lab_page, lab_server):
    key = fake_secret("openai-api-key")
    path = lab_server.write_notebook("blocked.ipynb", [new_code_cell("x = 1"),
                                                        new_code_cell(f'KEY = "{key}"')])
    lab_page.open_notebook("blocked.ipynb")
    lab_page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".cm-content").click()
    lab_page.keyboard.type("  # edit")
    lab_page.keyboard.press("Escape")
    lab_page.keyboard.press("Control+s")
    toast = lab_page.wait_for_toast("Save refused: blocked.ipynb holds 1 secret, cell 2 (openai-api-key)")
    assert key not in toast.inner_text()
    lab_page.wait_for_selector(".jp-securellm-flagged")
    dialog = lab_page.locator(".jp-Dialog")  # JupyterLab's own "File Save Error" dialog
    dialog.wait_for()
    assert "Save refused" in dialog.inner_text() and key not in dialog.inner_text()
    lab_page.shot("08-block-mode-refused")
    dialog.get_by_role("button").last.click()
    toast.get_by_role("button", name="Redact now").click()
    lab_page.wait_for_toast("Redacted 1 field in the open notebook")
    lab_page.save_notebook()
    text = path.read_text()
    assert key not in text and "[REDACTED:openai-api-key]" in text and "x = 1  # edit" in text
