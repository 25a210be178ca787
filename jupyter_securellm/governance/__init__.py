"""Governance: who may call what (Rego policy), how much (budgets, rate limits), what happened
(a hash-chained audit log with signed checkpoints), how it looks (Prometheus metrics) and when it
looks wrong (anomaly alerts).

Pure library code with no Jupyter imports, like `detect/`: the server wires it in, the CLI
(`policy eval|test`, `audit verify|report`) uses it without starting a server.
"""
from __future__ import annotations

from .policy import Decision, PolicyEngine, PolicyError, build_input, run_tests  # noqa: F401
