"""Allowlisting false positives: inline pragmas and a baseline file of fingerprints.

Inline, on the line of the finding (any comment syntax, the marker is what counts)::

    TEST_KEY = "AKIA..."  # securellm: allow
    # securellm: allow-next-line
    TEST_KEY = "AKIA..."

detect-secrets' own pragmas (``pragma: allowlist secret`` and ``pragma: allowlist nextline secret``)
are honoured too, so files already annotated for it need no edit.

The baseline is a JSON file of fingerprints, never of values (``scan --write-baseline FILE``)::

    {"version": 1, "tool": "jupyter-securellm",
     "fingerprints": [{"fingerprint": "...", "rule_id": "...", "path": "notebooks/a.ipynb"}]}

A fingerprint in the baseline is allowed wherever it appears; ``path`` and ``rule_id`` are there
for the reviewer. ``.securellm-baseline.json`` in the current directory or at the top of the git
work tree is used when no ``--baseline`` is given.
"""
from __future__ import annotations

import json
import os
import re

BASELINE_NAME = ".securellm-baseline.json"
BASELINE_VERSION = 1

_SAME_LINE = re.compile(r"securellm:\s*allow(?![-\w])|pragma:\s*allowlist[ \t]+secret", re.I)
_NEXT_LINE = re.compile(r"securellm:\s*allow-next-line|pragma:\s*allowlist[ \t]+nextline[ \t]+secret", re.I)


class BaselineError(ValueError):
    pass


def pragma_allows(text: str, start: int) -> bool:
    """True when the line holding ``text[start]`` (or the line above it) carries an allow pragma."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    if line_end < 0:
        line_end = len(text)
    if _SAME_LINE.search(text, line_start, line_end):
        return True
    if line_start == 0:
        return False
    prev_start = text.rfind("\n", 0, line_start - 1) + 1
    return bool(_NEXT_LINE.search(text, prev_start, line_start - 1))


def has_pragma(text: str) -> bool:
    """Cheap pre-check: no pragma anywhere means no per-finding line lookups."""
    return "securellm" in text or "allowlist" in text


class Baseline:
    def __init__(self, fingerprints=(), path: str | None = None, entries=None):
        self.path = path
        self.entries = list(entries or [])
        self.fingerprints = set(fingerprints) | {e["fingerprint"] for e in self.entries}

    def __contains__(self, fingerprint: str) -> bool:
        return fingerprint in self.fingerprints

    def __len__(self):
        return len(self.fingerprints)

    @classmethod
    def load(cls, path: str) -> "Baseline":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as exc:
            raise BaselineError(f"cannot read baseline {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise BaselineError(f"baseline {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("fingerprints"), list):
            raise BaselineError(f"baseline {path} has no 'fingerprints' list")
        entries = []
        for i, entry in enumerate(data["fingerprints"]):
            if isinstance(entry, str):
                entry = {"fingerprint": entry}
            if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), str):
                raise BaselineError(f"baseline {path}: entry {i} has no 'fingerprint' string")
            entries.append(entry)
        return cls(path=path, entries=entries)

    @staticmethod
    def write(path: str, findings, keep: "Baseline | None" = None) -> int:
        """Write a baseline holding ``findings`` (plus the entries of ``keep``); returns the count."""
        seen = {}
        for entry in keep.entries if keep else ():
            seen.setdefault(entry["fingerprint"], entry)
        for f in findings:
            seen.setdefault(f.fingerprint, {"fingerprint": f.fingerprint, "rule_id": f.rule_id, "path": f.path})
        entries = sorted(seen.values(), key=lambda e: (e.get("path") or "", e.get("rule_id") or "", e["fingerprint"]))
        data = {"version": BASELINE_VERSION, "tool": "jupyter-securellm", "fingerprints": entries}
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
        return len(entries)


def find_default_baseline(cwd: str | None = None) -> str | None:
    """``.securellm-baseline.json`` in ``cwd`` or in the top of the enclosing git work tree."""
    here = os.path.abspath(cwd or os.getcwd())
    candidate = os.path.join(here, BASELINE_NAME)
    if os.path.isfile(candidate):
        return candidate
    d = here
    while True:
        if os.path.exists(os.path.join(d, ".git")):
            candidate = os.path.join(d, BASELINE_NAME)
            return candidate if os.path.isfile(candidate) else None
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent
