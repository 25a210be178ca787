"""Governance tests: pure library code (policy, budget, audit, alerts) against real parts.

Real OpenBao (transit signing; the session `openbao`) and a real PostgreSQL cluster (`postgres`,
`postgres_url`) come from the jupyter_securellm.testing plugins registered in tests/conftest.py.
"""
