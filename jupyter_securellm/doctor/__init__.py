"""`jupyter-securellm doctor`: a deployment that can check itself.

One small check per concern, grouped in rooms: `environment` (what is installed in this
interpreter), `config` (the `c.SecureLLM.*` values, validated by the server's own code),
`process` (a running server) and `hub` (the hub-service deployment). Each check returns
pass, warn, fail or skip with a one-line reason and the fix. The report is safe to share:
it names variables, packages, files and fingerprints, never a secret value.
"""
from .core import CHECKS, Context, DoctorError, Result, exit_code, run_checks

__all__ = ["CHECKS", "Context", "DoctorError", "Result", "exit_code", "run_checks"]
