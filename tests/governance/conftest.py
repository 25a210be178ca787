"""Governance tests: pure library code (policy, budget, audit, alerts) against real parts.

Real OpenBao (transit signing; the session `openbao`), a real PostgreSQL cluster (`postgres`,
`postgres_url`) and a real Jupyter server for test_server.py (pytest-jupyter's `jp_serverapp`,
`jp_fetch`) come from the plugins registered in tests/conftest.py.
"""
