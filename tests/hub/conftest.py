"""The Hub tests use the shared OpenBao; `hub_stack` comes from jupyter_securellm.testing.hub."""
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from jupyter_securellm.testing.pytest_plugin import openbao  # noqa: E402,F401
