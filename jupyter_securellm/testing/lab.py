"""A real JupyterLab in a real browser, for tests: OpenBao, the stand-in provider and JupyterLab with the
SecureLLM server extension and (optionally) the built labextension, driven by Debian's Chromium through
Playwright (``executable_path=/usr/bin/chromium``; no browser is ever downloaded).

Use it from a test folder's conftest.py::

    from jupyter_securellm.testing.lab import (lab_browser, lab_no_asyncio_loop, lab_no_server_cleanup,  # noqa: F401
                                               lab_page, lab_server)

(``lab_no_asyncio_loop`` and ``lab_no_server_cleanup`` switch off pytest-jupyter's autouse asyncio loop there;
it fights Playwright's synchronous API.)

- ``lab_server`` (module scope): one JupyterLab per test module, stopped at the end of the module. A module
  changes it with module-scoped fixtures of its own: ``lab_server_config`` (extra traitlets config, e.g.
  ``{"SecureLLM": {"save_hook_mode": "block"}}``) and ``lab_with_extension`` (False: JupyterLab without
  our front end, the benchmark's baseline).
- ``lab_browser`` (module scope): one headless Chromium.
- ``lab_page`` (function scope): a fresh browser context and page; ``lab_page.shot("name")`` saves a
  screenshot under the artifacts folder (``$SECURELLM_ARTIFACTS`` or ``artifacts/lab`` in the repo).

`LabServer` and the page helpers (`open_notebook`, `run_command`, `toasts`, `wait_for_kernel_idle`) work
without pytest too (``benchmarks/bench_lab.py`` uses them).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..demo import REPO, DemoStack, free_port

CHROMIUM = os.environ.get("SECURELLM_CHROMIUM", "/usr/bin/chromium")
LABEXTENSION_NAME = "jupyter-securellm"
BUILT_LABEXTENSION = REPO / "jupyter_securellm" / "labextension"
ARTIFACTS = Path(os.environ.get("SECURELLM_ARTIFACTS") or REPO / "artifacts" / "lab")

#: JupyterLab settings that keep a test page quiet: no news or update checks (network, and toasts that
#: would sit over what the tests look at).
QUIET_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    # start the notebook's own kernel without the "Select Kernel" dialog
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True},
}


class LabError(RuntimeError):
    """The test JupyterLab could not start; the message says why and where the logs are."""


def labextensions_farm(target: Path, with_extension: bool) -> Path:
    """A labextensions folder holding every installed prebuilt extension except ours, plus (when asked)
    ours from this checkout's build. JupyterLab then loads exactly this checkout's front end, whatever
    copy the environment may have installed."""
    from jupyter_core.paths import jupyter_path

    target.mkdir(parents=True, exist_ok=True)

    def link(src: Path, dst: Path) -> None:
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src, target_is_directory=True)

    for base in map(Path, jupyter_path("labextensions")):
        if not base.is_dir() or base.resolve() == target.resolve():
            continue
        for entry in base.iterdir():
            if entry.name.startswith("@") and entry.is_dir():
                for sub in entry.iterdir():
                    link(sub, target / entry.name / sub.name)
            elif entry.name != LABEXTENSION_NAME and (entry / "package.json").is_file():
                link(entry, target / entry.name)
    if with_extension:
        if not (BUILT_LABEXTENSION / "package.json").is_file():
            raise LabError(f"The labextension is not built ({BUILT_LABEXTENSION} is missing): run `make labextension`.")
        link(BUILT_LABEXTENSION, target / LABEXTENSION_NAME)
    return target


class LabServer:
    """OpenBao + stand-in provider + JupyterLab on 127.0.0.1 (a `DemoStack`), with control over which front
    end JupyterLab loads and extra server configuration."""

    def __init__(self, workdir: str | os.PathLike | None = None, *, with_extension: bool = True,
                 extra_config: dict | None = None):
        self._own = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="securellm-lab-"))
        self.with_extension = with_extension
        farm = labextensions_farm(self.workdir / "labextensions", with_extension)
        config = {"LabApp": {"labextensions_path": [str(farm)], "extra_labextensions_path": []}}
        for cls, traits in (extra_config or {}).items():
            config.setdefault(cls, {}).update(traits)
        self.stack = DemoStack(self.workdir / "stack", port=free_port(), app="lab", notebook="", extra_config=config)

    @property
    def root_dir(self) -> Path:
        return self.stack.workdir / "notebooks"

    @property
    def base_url(self) -> str:
        return self.stack.base_url

    @property
    def token(self) -> str:
        return self.stack.jupyter_token

    def url(self, path: str = "", reset: bool = True) -> str:
        """The Lab URL of a file (or of the Lab itself), token included. ``reset`` starts from an empty
        workspace, so tabs a previous page left open are not restored (and do not take the focus)."""
        tail = f"lab/tree/{path}" if path else "lab"
        return f"{self.base_url}{tail}?{'reset&' if reset else ''}token={self.token}"

    def start(self) -> "LabServer":
        settings = self.stack.workdir / "config" / "lab" / "user-settings"
        for rel, value in QUIET_SETTINGS.items():
            f = settings / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(value))
        try:
            self.stack.start()
        except Exception as exc:
            raise LabError(f"JupyterLab did not start: {exc} (logs in {self.stack.workdir})") from exc
        return self

    def stop_openbao(self) -> None:
        """Stop the OpenBao server (to see what users see when Vault goes away)."""
        import signal

        for proc in self.stack.procs:
            if "bao" in Path(str(proc.args[0])).name and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)

    def write_notebook(self, name: str, cells: list, **metadata) -> Path:
        """Write a notebook straight to disk (bypassing the save hook), as a file a user might open."""
        import nbformat
        from nbformat.v4 import new_notebook

        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}, **metadata})
        path = self.root_dir / name
        path.write_text(nbformat.writes(nb), encoding="utf-8")
        return path

    def log_text(self) -> str:
        p = self.stack.workdir / "jupyter.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self) -> None:
        self.stack.stop(keep_logs=True)
        if self._own:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ----------------------------------------------------------------------------------------- browser side


def launch_chromium(playwright, **kw):
    """Debian's Chromium, headless; never a browser downloaded by Playwright."""
    if not os.access(CHROMIUM, os.X_OK):
        raise LabError(f"{CHROMIUM} is missing: apt-get install chromium (make test does it when run as root).")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, **kw)


def wait_for_lab(page, timeout: float = 90) -> None:
    """Until JupyterLab's shell is up and its start-up spinner is gone."""
    page.wait_for_selector("#jp-main-dock-panel", state="attached", timeout=timeout * 1000)
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=timeout * 1000)


def wait_for_kernel_idle(page, timeout: float = 90) -> None:
    """Until the current notebook's kernel is started and idle (the toolbar's kernel status)."""
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook", timeout=timeout * 1000)
    page.wait_for_function(
        """() => {
            const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            const s = p && p.querySelector('.jp-Notebook-ExecutionIndicator');
            const k = p && p.querySelector('.jp-KernelName');
            return s && s.getAttribute('data-status') === 'idle' && k && !/No Kernel|Unknown/.test(k.textContent)
                && !document.querySelector('.jp-Dialog');
        }""",
        timeout=timeout * 1000,
    )


def open_notebook(page, server: LabServer, path: str, timeout: float = 90) -> None:
    """Open a notebook in a fresh Lab page and wait for its kernel."""
    page.goto(server.url(path))
    wait_for_lab(page, timeout)
    wait_for_kernel_idle(page, timeout)


def run_command(page, label: str) -> None:
    """Run a command by its label through the command palette, as a keyboard user would."""
    page.keyboard.press("Control+Shift+C")
    box = page.locator("#command-palette .lm-CommandPalette-input")
    box.wait_for()
    box.fill(label)
    page.locator("#command-palette .lm-CommandPalette-item.lm-mod-active", has_text=label).first.wait_for()
    box.press("Enter")


def toasts(page) -> list:
    """The texts of the notifications on screen."""
    return page.locator(".Toastify__toast").all_inner_texts()


def wait_for_toast(page, text: str, timeout: float = 30):
    """The notification containing ``text`` (a Playwright locator), once it is shown."""
    loc = page.locator(".Toastify__toast", has_text=text).first
    loc.wait_for(timeout=timeout * 1000)
    return loc


def shot(page, name: str) -> Path:
    """Save a screenshot of the page as ``<artifacts>/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.wait_for_timeout(800)  # let notifications finish sliding in (the picture only; asserts never wait)
    page.screenshot(path=str(path))
    return path


def save_notebook(page, timeout: float = 30) -> None:
    """Ctrl+S, then wait until the document is no longer dirty."""
    page.keyboard.press("Control+s")
    page.wait_for_function(
        """() => {
            const tab = document.querySelector('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current');
            return tab && !tab.classList.contains('jp-mod-dirty');
        }""",
        timeout=timeout * 1000,
    )


# ----------------------------------------------------------------------------------------- pytest fixtures

try:
    import pytest
except ImportError:  # pragma: no cover - the helpers above work without pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="module")
    def lab_server_config():
        """Extra traitlets config for this module's JupyterLab (override in a test module)."""
        return {}

    @pytest.fixture(scope="module")
    def lab_with_extension():
        """Whether this module's JupyterLab loads our labextension (override in a test module)."""
        return True

    @pytest.fixture(scope="module")
    def lab_server(tmp_path_factory, lab_server_config, lab_with_extension):
        server = LabServer(tmp_path_factory.mktemp("lab"), with_extension=lab_with_extension,
                           extra_config=lab_server_config)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    @pytest.fixture(name="jp_asyncio_loop")
    def lab_no_asyncio_loop():
        """Replaces pytest-jupyter's autouse `jp_asyncio_loop` where browser tests run: Playwright's sync API
        keeps its own loop marked as running, and that fixture would pick it up and close it. Import it
        into a browser test folder's conftest (``from jupyter_securellm.testing.lab import lab_no_asyncio_loop``)."""
        yield None

    @pytest.fixture(name="jp_server_cleanup")
    def lab_no_server_cleanup():
        """Replaces pytest-jupyter's autouse in-process server cleanup (no in-process server here: JupyterLab
        runs in its own process, stopped by `lab_server`)."""
        yield None

    @pytest.fixture(scope="module")
    def lab_browser():
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        try:
            browser = launch_chromium(pw)
            try:
                yield browser
            finally:
                browser.close()
        finally:
            pw.stop()

    class _Page:
        """A Playwright page plus the helpers above bound to it."""

        def __init__(self, page, server):
            self.page, self.server = page, server

        def __getattr__(self, name):
            return getattr(self.page, name)

        def open_notebook(self, path, timeout=90):
            open_notebook(self.page, self.server, path, timeout)

        def run_command(self, label):
            run_command(self.page, label)

        def toasts(self):
            return toasts(self.page)

        def wait_for_toast(self, text, timeout=30):
            return wait_for_toast(self.page, text, timeout)

        def shot(self, name):
            return shot(self.page, name)

        def save_notebook(self, timeout=30):
            save_notebook(self.page, timeout)

    @pytest.fixture
    def lab_page(lab_browser, lab_server, request):
        context = lab_browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield _Page(page, lab_server)
            if getattr(request.node, "lab_failed", False):  # set by a conftest makereport hook, if any
                shot(page, f"FAILED-{request.node.name}")
        finally:
            context.close()
