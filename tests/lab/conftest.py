"""Fixtures for the JupyterLab front end's tests: a real Jupyter server (pytest-jupyter) for the REST
side, and one real JupyterLab + Chromium per browser-test module (jupyter_securellm.testing.lab)."""
from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pytest_jupyter.jupyter_server import *  # noqa: E402,F401,F403  (jp_serverapp, jp_fetch, ...)
