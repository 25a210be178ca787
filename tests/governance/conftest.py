"""Governance tests: pure library code (policy, budget, audit, alerts) and its wiring into a real server.

The fixtures they use (openbao, postgres, postgres_url, jp_fetch, jp_serverapp) are the shared plugins the
root conftest registers (jupyter_securellm/testing/).
"""
