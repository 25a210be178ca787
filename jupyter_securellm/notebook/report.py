"""Output formats for findings: text (people), JSON (the schema in docs/architecture.md) and SARIF 2.1.0 (code scanning).

None of them ever holds a secret: a finding carries a location, a rule id and a fingerprint only.
"""
from __future__ import annotations

import json
import os
from urllib.parse import quote

from .._version import __version__

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/jupyter-securellm/jupyter-securellm"


def format_text(findings) -> str:
    lines = []
    for f in findings:
        where = ""
        if f.cell is not None:
            where = f" in cells[{f.cell}].{f.field}"
        elif f.field is not None:
            where = f" in {f.field}"
        lines.append(f"{f.path}:{f.line}:{f.column}: {f.rule_id}{where} (fingerprint {f.fingerprint})")
    return "\n".join(lines) + ("\n" if lines else "")


def format_json(findings) -> str:
    return json.dumps({"findings": [f.to_dict() for f in findings]}, indent=2) + "\n"


def _uri(path: str) -> str:
    """A relative, forward-slash URI for a path (what GitHub code scanning resolves against the repo)."""
    rel = path
    if os.path.isabs(path):
        try:
            rel = os.path.relpath(path)
        except ValueError:  # pragma: no cover - other drive on Windows
            rel = path
    rel = rel.replace(os.sep, "/")
    while rel.startswith("./"):
        rel = rel[2:]
    return quote(rel, safe="/-._~")


def _rule_descriptions() -> dict:
    try:
        from jupyter_securellm.detect.rules import default_rules

        return {r.id: r.description for r in default_rules()}
    except Exception:  # the engine's rule file is optional here: SARIF stays valid without text
        return {}


def format_sarif(findings) -> str:
    descriptions = _rule_descriptions()
    rule_ids = sorted({f.rule_id for f in findings})
    index = {rid: i for i, rid in enumerate(rule_ids)}
    rules = []
    for rid in rule_ids:
        text = descriptions.get(rid) or f"Secret matching rule {rid}"
        rules.append(
            {
                "id": rid,
                "name": "".join(p.capitalize() for p in rid.replace("_", "-").split("-")),
                "shortDescription": {"text": text},
                "fullDescription": {"text": f"{text}. Remove the secret and rotate it; it may already be exposed."},
                "help": {
                    "text": "Run `jupyter-securellm scrub PATH` to replace it with a placeholder, rotate the credential, "
                    "or allowlist a false positive with a `# securellm: allow` pragma or a baseline entry."
                },
                "defaultConfiguration": {"level": "error"},
                "properties": {"tags": ["security", "secret"], "security-severity": "8.0", "precision": "high"},
            }
        )
    results = []
    for f in findings:
        where = f" in cells[{f.cell}].{f.field}" if f.cell is not None else (f" in {f.field}" if f.field else "")
        results.append(
            {
                "ruleId": f.rule_id,
                "ruleIndex": index[f.rule_id],
                "level": "error",
                "message": {"text": f"Possible secret ({f.rule_id}){where}. The value is not shown."},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(f.path), "uriBaseId": "%SRCROOT%"},
                            "region": {
                                "startLine": f.line,
                                "startColumn": f.column,
                                "endLine": f.end_line,
                                "endColumn": f.end_column,
                            },
                        }
                    }
                ],
                "partialFingerprints": {"secretFingerprint/v1": f.fingerprint},
            }
        )
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "jupyter-securellm",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFO_URI,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": _srcroot()}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _srcroot() -> str:
    cwd = os.getcwd().replace(os.sep, "/")
    if not cwd.startswith("/"):
        cwd = "/" + cwd
    return "file://" + quote(cwd.rstrip("/") + "/", safe="/-._~:")
