"""A real browser on a real JupyterLab: Debian's Chromium driven by Playwright (never a downloaded browser).

    with chromium() as browser:
        lab = LabPage(browser.new_page(), url)
        lab.wait_ready()
        lab.run_all()
        texts = lab.output_texts(cell_index)

`lab_settings(config_dir)` writes the JupyterLab user settings these checks rely on (every cell kept in the
page, so outputs far down the notebook can be read and photographed).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str:
    """Debian's chromium (apt-get install chromium); a clear error when it is missing."""
    for cand in (os.environ.get("SECURELLM_CHROMIUM"), CHROMIUM, shutil.which("chromium")):
        if cand and os.path.exists(cand):
            return cand
    raise FileNotFoundError("Chromium not found at /usr/bin/chromium: apt-get install chromium "
                            "(the tests never download a browser).")


@contextlib.contextmanager
def chromium(headless: bool = True):
    """A Playwright Chromium browser from the Debian package; closed on exit."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # root in containers/CI
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=headless, args=args)
        try:
            yield browser
        finally:
            browser.close()


def lab_settings(config_dir: str | os.PathLike) -> None:
    """User settings under JUPYTER_CONFIG_DIR: no notebook windowing (every cell stays in the DOM)."""
    d = Path(config_dir) / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    d.mkdir(parents=True, exist_ok=True)
    (d / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))


class LabPage:
    """One JupyterLab page with a notebook open."""

    def __init__(self, page, url: str):
        self.page = page
        self.url = url

    def wait_ready(self, timeout: float = 120) -> None:
        """The notebook is rendered and its kernel is idle."""
        self.page.goto(self.url, timeout=timeout * 1000)
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
        self._wait(lambda: self.page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0
                   or "Idle" in (self.page.locator(".jp-NotebookPanel-toolbar").inner_text() or ""),
                   timeout, "the kernel never became idle")

    def run_all(self, timeout: float = 300) -> None:
        """Run > Run All Cells, then wait until no cell is queued or running."""
        self.page.locator(".jp-Notebook").first.click()
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        code = self.page.locator(".jp-CodeCell .jp-InputPrompt")

        def done():
            prompts = code.all_inner_texts()
            return prompts and all("[*]" not in p and "[ ]" not in p and p.strip() != "[ ]:" for p in prompts) \
                and all(any(ch.isdigit() for ch in p) for p in prompts)

        self._wait(done, timeout, "Run All Cells did not finish")

    def cell(self, index: int):
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def output_texts(self, index: int) -> list[str]:
        """The rendered text of each output of cell `index`, in page order."""
        return self.cell(index).locator(".jp-OutputArea-output").all_inner_texts()

    def screenshot_cells(self, first: int, last: int, path: str | os.PathLike) -> None:
        """One picture of cells first..last (inclusive)."""
        self.cell(first).scroll_into_view_if_needed()
        boxes = [self.cell(i).bounding_box() for i in range(first, last + 1)]
        boxes = [b for b in boxes if b]
        x0 = min(b["x"] for b in boxes)
        y0 = min(b["y"] for b in boxes)
        x1 = max(b["x"] + b["width"] for b in boxes)
        y1 = max(b["y"] + b["height"] for b in boxes)
        self.page.screenshot(path=str(path), clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0},
                             full_page=True)

    @staticmethod
    def _wait(cond, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except Exception:  # the page is still changing under us
                pass
            time.sleep(0.25)
        raise TimeoutError(what)
