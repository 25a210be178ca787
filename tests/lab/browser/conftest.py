"""Browser tests: one real JupyterLab (OpenBao, stand-in provider, our extensions) per module, driven by
Debian's Chromium through Playwright (jupyter_securellm.testing.lab)."""
from __future__ import annotations

import pytest

from jupyter_securellm.testing.lab import (  # noqa: F401
    lab_browser,
    lab_no_asyncio_loop,
    lab_no_server_cleanup,
    lab_page,
    lab_server,
    lab_server_config,
    lab_with_extension,
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # lets lab_page save a screenshot of a failed test's page (artifacts/lab/FAILED-<test>.png)
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.lab_failed = rep.failed
