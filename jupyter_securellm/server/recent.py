"""`GET /jupyter-securellm/v1/audit/recent`: this user's last calls from the audit log, for the Lab panel.

Read-only, and only the caller's own `call` records: time, model, tokens, status. Audit records never
hold prompts or answers (`jupyter_securellm.governance.audit`), and nothing else of a record is
returned. Only the tail of the live log file is read, so the cost does not grow with the log.
"""
from __future__ import annotations

import json
import os

TAIL_BYTES = 512 * 1024
MAX_LIMIT = 100


def recent_calls(path: str, user: str, limit: int = 10) -> list:
    """The newest ``limit`` call records of ``user`` in the tail of the audit log at ``path``."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read()
    except FileNotFoundError:
        return []  # configured, nothing written yet
    lines = data.split(b"\n")
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line of the tail may be cut
    calls = []
    for line in reversed(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line while a write is under way
        if not isinstance(rec, dict) or rec.get("type") != "call" or rec.get("user") != user:
            continue
        tin, tout = rec.get("tokens_in"), rec.get("tokens_out")
        tokens = sum(t for t in (tin, tout) if isinstance(t, int)) if (tin, tout) != (None, None) else None
        calls.append({"time": rec.get("time"), "model": rec.get("model"), "tokens": tokens,
                      "status": rec.get("status")})
        if len(calls) >= limit:
            break
    return calls
