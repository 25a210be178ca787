"""Re-use the broker fixtures of tests/server (real OpenBao, stand-in provider, real Jupyter server).

Loaded from its file, since test folders are not packages (`--import-mode=importlib`).
"""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_securellm_server_fixtures", Path(__file__).resolve().parent.parent / "server" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
globals().update({k: v for k, v in vars(_fixtures).items() if not k.startswith("__")})
