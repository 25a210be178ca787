"""The JupyterLab front end in a real browser (Debian's Chromium via Playwright) against a real stack:
JupyterLab started here with our server extension and our built labextension, OpenBao, the stand-in
provider, real kernels. One JupyterLab for the whole module.

Trust tier 1 (accidental exposure): the scan marks and redacts a pasted key in the open notebook, a save
that scrubbed a key says so, and the file on disk never holds it. Tier 2 shows in the status bar and
panel (the broker holds the key; the kernel calls it). Screenshots of each step go to artifacts/lab/.
"""
from __future__ import annotations

import json
import re
import time

import pytest
import requests
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from jupyter_securellm.detect import fake_secret

pytestmark = pytest.mark.slow


# A policy for this module: long answers need approval (everything else is allowed).
POLICY = """package jupyter_securellm.authz

deny contains "answers longer than 5000 tokens need approval" if {
	input.action == "chat"
	is_number(input.request.max_tokens)
	input.request.max_tokens > 5000
}
"""


@pytest.fixture(scope="module")
def lab_server_config(tmp_path_factory):
    policies = tmp_path_factory.mktemp("policies")
    (policies / "lab.rego").write_text(POLICY)
    return {"SecureLLM": {"policy_paths": [str(policies)], "budgets": {"default": {"daily_tokens": 100000}}}}


def status_json(server) -> dict:
    r = requests.get(f"{server.base_url}jupyter-securellm/v1/status",
                     headers={"Authorization": f"token {server.token}"}, timeout=30)
    r.raise_for_status()
    return r.json()


def cell(page, i: int):
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(i)


def test_llm_cell_answer_streams_in(lab_page, lab_server):
    prompt = "say hello to the notebook users today please and stream this answer word by word"
    lab_server.write_notebook("llm.ipynb", [
        new_code_cell("%load_ext jupyter_securellm"),
        # the stand-in provider sends one word per chunk, 0.4 s apart, so the answer visibly streams
        new_code_cell(f"%%llm -m demo -f text\n{prompt} [[provider:slow=0.4]]"),
    ])
    lab_page.open_notebook("llm.ipynb")
    lab_page.run_command("Run All Cells")
    output = cell(lab_page, 1).locator(".jp-OutputArea-output")
    final = f"echo: {prompt}"
    states: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = " ".join(t.strip() for t in output.all_inner_texts()).strip()
        if text and (not states or states[-1] != text):
            states.append(text)
        if final in text:
            break
        time.sleep(0.05)
    else:
        lab_page.shot("llm-timeout")
        pytest.fail(f"the answer never completed; saw {states!r}")
    partial = [s for s in states if s != states[-1]]
    assert partial, f"the answer appeared at once, not streamed: {states!r}"
    assert all(final.startswith(s) for s in partial), states  # it grew word by word
    lab_page.shot("01-llm-cell-streamed")


def test_a_call_denied_by_policy_shows_a_notification(lab_page, lab_server):
    lab_server.write_notebook("denied.ipynb", [
        new_code_cell("%load_ext jupyter_securellm"),
        new_code_cell("%%llm -m demo --max-tokens 9000\nwrite a long novel"),
    ])
    lab_page.open_notebook("denied.ipynb")
    lab_page.run_command("Run All Cells")
    toast = lab_page.wait_for_toast("Call denied by policy", timeout=90)
    assert "answers longer than 5000 tokens need approval" in toast.inner_text()
    assert "SecureLLM (policy_denied)" in cell(lab_page, 1).locator(".jp-OutputArea-output").inner_text()
    lab_page.shot("02-policy-denied-notification")


def test_status_bar_shows_model_and_budget(lab_page, lab_server):
    status = status_json(lab_server)
    lab_page.goto(lab_server.url())
    item = lab_page.locator(".jp-securellm-status")
    item.wait_for()
    lab_page.wait_for_function("() => document.querySelector('.jp-securellm-status').textContent.includes('demo')")
    text, label = item.inner_text(), item.get_attribute("aria-label")
    assert text.startswith("SecureLLM: demo"), text
    assert item.get_attribute("data-level") == "ok" and item.get_attribute("role") == "button"
    assert "Vault: ok" in label and "Models: demo" in label
    if status.get("budget"):
        assert re.search(r"demo · [\d.]+k? tok/[\d.]+k? tok", text), text
    else:
        assert "Budget: not configured" in label
    # keyboard: focus the item and press Enter to open the panel (once the launcher has taken its focus)
    lab_page.locator(".jp-Launcher").wait_for()
    item.press("Enter")
    panel = lab_page.locator("#jp-securellm-panel")
    panel.wait_for(state="visible")
    assert "demo" in panel.locator(".jp-securellm-models").inner_text()
    sections = panel.locator("h3").all_inner_texts()
    assert [s.lower() for s in sections] == ["connection", "models you may call", "budget", "alerts",
                                             "your recent calls", "trust tier"]
    lab_page.wait_for_function(
        "() => !document.querySelector('#jp-securellm-panel').textContent.includes('loading…')")
    lab_page.shot("03-status-bar-and-panel")


def test_scan_marks_the_cell_and_redact_now_cleans_the_file(lab_page, lab_server):
    key = fake_secret("openai-api-key")  # generated now, never committed
    token = fake_secret("github-token")
    path = lab_server.write_notebook("leaky.ipynb", [
        new_markdown_cell("# Load the data"),
        new_code_cell("x = 1"),
        new_code_cell(f'client = OpenAI(api_key="{key}")', execution_count=2,
                      outputs=[new_output("stream", name="stdout", text=f"token={token}\n")]),
    ])
    lab_page.open_notebook("leaky.ipynb")
    lab_page.run_command("Scan notebook for secrets")
    toast = lab_page.wait_for_toast("2 secrets found in leaky.ipynb")
    assert "cell 3" in toast.inner_text() and "openai-api-key" in toast.inner_text()
    flagged = cell(lab_page, 2)
    assert "jp-securellm-flagged" in flagged.get_attribute("class")
    badge = flagged.locator(".jp-securellm-badge")
    assert badge.inner_text().strip() == "⚠ 2"
    assert "openai-api-key in source line 1" in badge.get_attribute("aria-label")
    assert flagged.locator(".jp-securellm-flagged-output").count() == 1
    assert "jp-securellm-flagged" not in cell(lab_page, 1).get_attribute("class")
    for t in (key, token):
        assert t not in toast.inner_text() and t not in badge.get_attribute("aria-label")
    lab_page.shot("03-scan-marked")
    # the command is in the notebook's context menu too
    cell(lab_page, 1).click(button="right")
    menu = lab_page.locator(".lm-Menu").last
    assert menu.locator(".lm-Menu-itemLabel", has_text="Scan notebook for secrets").count() == 1
    lab_page.keyboard.press("Escape")

    # an unsaved edit elsewhere, then "Redact now"
    cell(lab_page, 1).locator(".cm-content").click()
    lab_page.keyboard.press("End")
    lab_page.keyboard.type("  # unsaved edit")
    lab_page.keyboard.press("Escape")
    toast.get_by_role("button", name="Redact now").click()
    lab_page.wait_for_toast("Redacted 2 fields in the open notebook")
    assert lab_page.locator(".jp-securellm-flagged").count() == 0
    editor = cell(lab_page, 2).locator(".cm-content").inner_text()
    assert 'api_key="[REDACTED:openai-api-key]"' in editor and key not in editor
    assert "token=[REDACTED:github-token]" in cell(lab_page, 2).locator(".jp-OutputArea-output").inner_text()
    lab_page.shot("04-redacted")

    lab_page.save_notebook()
    on_disk = path.read_text()
    assert key not in on_disk and token not in on_disk
    nb = json.loads(on_disk)
    assert "".join(nb["cells"][1]["source"]) == "x = 1  # unsaved edit"  # the user's edit is kept
    assert "[REDACTED:openai-api-key]" in "".join(nb["cells"][2]["source"])


def test_save_with_a_key_in_an_output_is_scrubbed_and_says_so(lab_page, lab_server):
    key = fake_secret("anthropic-api-key")
    path = lab_server.write_notebook("output.ipynb", [
        new_code_cell("import os\nprint(os.environ.get('ANTHROPIC_API_KEY'))", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text=f"{key}\n")]),
        new_code_cell("y = 2"),
    ])
    lab_page.open_notebook("output.ipynb")
    cell(lab_page, 1).locator(".cm-content").click()
    lab_page.keyboard.type("  # edit")
    lab_page.keyboard.press("Escape")
    lab_page.save_notebook()
    toast = lab_page.wait_for_toast("Saved output.ipynb: 1 secret redacted on disk")
    assert "cell 1 (anthropic-api-key)" in toast.inner_text() and key not in toast.inner_text()
    assert key not in path.read_text() and "[REDACTED:anthropic-api-key]" in path.read_text()
    # the open notebook still shows the value: its cell is marked, and "Redact now" is offered
    lab_page.wait_for_selector(".jp-securellm-flagged")
    assert toast.get_by_role("button", name="Redact now").is_visible()
    lab_page.shot("05-save-scrubbed-notification")


def test_dark_theme_and_labels(lab_page, lab_server):
    lab_page.goto(lab_server.url())
    lab_page.locator(".jp-Launcher").wait_for()  # it takes the focus when it opens
    lab_page.run_command("Use Theme: JupyterLab Dark")
    lab_page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    lab_page.locator(".jp-securellm-status").click()
    panel = lab_page.locator("#jp-securellm-panel")
    panel.wait_for(state="visible")
    # text and background come from the theme: light text on a dark panel
    colors = lab_page.evaluate("""() => {
        const p = document.querySelector('#jp-securellm-panel');
        const s = getComputedStyle(p);
        return [s.color, s.backgroundColor];
    }""")
    lum = [sum(int(v) for v in re.findall(r"\d+", c)[:3]) / 3 for c in colors]
    assert lum[0] > 150 > lum[1], colors
    assert panel.get_attribute("aria-label") == "SecureLLM"
    toolbar = lab_page.locator("[data-command='securellm:scan-notebook']")
    assert toolbar.count() == 0 or toolbar.first.get_attribute("title")
    lab_page.wait_for_function(
        "() => !document.querySelector('#jp-securellm-panel').textContent.includes('loading…')")
    lab_page.shot("06-dark-theme-panel")
    lab_page.run_command("Use Theme: JupyterLab Light")
    lab_page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")


def test_status_bar_warns_when_vault_stops(lab_page, lab_server):
    """Last in the module: it stops this module's OpenBao."""
    lab_page.goto(lab_server.url())
    item = lab_page.locator(".jp-securellm-status")
    lab_page.wait_for_function("() => document.querySelector('.jp-securellm-status')?.dataset.level === 'ok'")
    lab_server.stop_openbao()
    assert status_json(lab_server)["vault"]["reachable"] is False
    lab_page.locator("#jp-securellm-panel .jp-securellm-refresh").evaluate("b => b.click()")  # refresh now
    lab_page.wait_for_function("() => document.querySelector('.jp-securellm-status').dataset.level === 'warn'")
    assert item.inner_text() == "SecureLLM ⚠ Vault unreachable"
    assert "jp-mod-warn" in item.get_attribute("class")
    assert "Warning: Vault unreachable" in item.get_attribute("aria-label")
    item.click()
    panel = lab_page.locator("#jp-securellm-panel")
    panel.wait_for(state="visible")
    assert panel.locator(".jp-securellm-health").inner_text() == "Vault unreachable."
    assert "jp-securellm-level-warn" in panel.locator(".jp-securellm-health").get_attribute("class")
    lab_page.shot("07-status-bar-vault-down")
