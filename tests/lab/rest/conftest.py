"""The front end's REST side (scan endpoint, save outcome) through a real Jupyter server (pytest-jupyter)."""
from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pytest_jupyter.jupyter_server import *  # noqa: E402,F401,F403  (jp_serverapp, jp_fetch, ...)
