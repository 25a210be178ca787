"""Governance tests: pure library code (policy, budget, audit, alerts) against real parts.

Real OpenBao (transit signing) and a real PostgreSQL cluster come from jupyter_securellm.testing.
"""
from __future__ import annotations

from jupyter_securellm.testing.pytest_plugin import openbao, openbao_factory  # noqa: F401
from jupyter_securellm.testing.postgres import postgres, postgres_url  # noqa: F401,E402

# A real Jupyter server for test_server.py (jp_fetch, jp_serverapp; the async test runner comes with it).
from pytest_jupyter.jupyter_server import *  # noqa: E402,F401,F403
