"""Text table and JSON for doctor results.

Every string goes through the redactor on the way out: checks only ever put names, paths and
fingerprints in their results, and this is the net under that rule.
"""
from __future__ import annotations

import json

from .core import exit_code

MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "skip", "error": "ERROR"}


def _safe():
    from ..detect import Redactor, Scanner

    r = Redactor(Scanner())
    return r.redact


def format_json(results) -> str:
    red = _safe()
    body = {"exit_code": exit_code(results),
            "summary": {s: sum(1 for r in results if r.status == s) for s in MARK},
            "checks": [{k: ([red(x) for x in v] if isinstance(v, list) else red(v) if isinstance(v, str) else v)
                        for k, v in r.as_dict().items()} for r in results]}
    return json.dumps(body, indent=2) + "\n"


def format_text(results, verbose: bool = False) -> str:
    red = _safe()
    width = max([len(r.check) for r in results] + [5])
    lines = [f"{'STATUS':6}  {'CHECK':{width}}  RESULT"]
    for r in results:
        lines.append(f"{MARK[r.status]:6}  {r.check:{width}}  {red(r.summary)}")
        if r.status in ("fail", "warn", "error") or verbose:
            for d in r.details if (r.status != "pass" or verbose) else ():
                lines.append(f"{'':6}  {'':{width}}    - {red(d)}")
            if r.fix and r.status != "pass":
                lines.append(f"{'':6}  {'':{width}}    fix: {red(r.fix)}")
    counts = ", ".join(f"{sum(1 for r in results if r.status == s)} {s}" for s in MARK
                       if any(r.status == s for r in results))
    lines.append(f"\n{counts}; exit {exit_code(results)}")
    return "\n".join(lines) + "\n"
