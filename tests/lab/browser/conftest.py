"""Browser tests: one real JupyterLab (OpenBao, stand-in provider, our extensions) per module, driven by
Debian's Chromium through Playwright. No pytest-jupyter here: its asyncio loop fixture would fight
Playwright's synchronous API."""
from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from jupyter_securellm.testing.lab import (  # noqa: E402,F401
    lab_browser,
    lab_page,
    lab_server,
    lab_server_config,
    lab_with_extension,
)

import pytest  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # lets lab_page save a screenshot of a failed test's page (artifacts/lab/FAILED-<test>.png)
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.lab_failed = rep.failed
