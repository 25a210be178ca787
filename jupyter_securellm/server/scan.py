"""`POST /jupyter-securellm/v1/scan`: the save hook's scanner run on the notebook open in the browser.

The front end sends the notebook as it is in the editor, unsaved edits included. It gets back where each
secret is: rule, cell, field, line and column (1-based, in the field's text), fingerprint. The value is
never returned. With ``?redact=true`` the answer also holds each affected field as the save hook would
write it. "Redact now" then replaces those fields in the open document and leaves everything else alone.

This module adds no scanner of its own: it runs the save hook's engine (the same rules, the secrets
read from Vault, the same allowlist and cache) through `jupyter_securellm.notebook`.
"""
from __future__ import annotations

from ..notebook.core import scrub_notebook_model
from ..notebook.fields import NotebookError
from ..notebook.jsonpos import KeyRef
from .errors import BrokerError

#: Largest notebook accepted (outputs make notebooks big; the save hook sees the same sizes).
SCAN_MAX_BYTES = 64 * 1024 * 1024


def notebook_from_body(body) -> tuple:
    """(notebook dict, path or None) from a contents-API model, ``{"content": nb}`` or a bare notebook."""
    if not isinstance(body, dict):
        raise BrokerError("invalid_request", "Send a JSON object: a notebook, or a contents model "
                                             '{"type": "notebook", "content": <notebook>, "path": ...}.')
    path = body.get("path") if isinstance(body.get("path"), str) else None
    if "content" in body:
        if body.get("type", "notebook") != "notebook":
            raise BrokerError("invalid_request", f"Only notebooks can be scanned here, not {body.get('type')!r}.")
        return body["content"], path
    return body, path


def scan_notebook(hook, body, contents_manager=None, redact: bool = False) -> dict:
    """Findings (and, with ``redact``, the scrubbed fields) for a notebook sent by the front end."""
    nb, path = notebook_from_body(body)
    baseline = hook._baseline(path, contents_manager) if path else None
    try:
        # The notebook was parsed from this request's body: ours to scrub in place.
        hits = scrub_notebook_model(nb, hook.engine, baseline, redact=redact, cache=hook.cache)
    except NotebookError as exc:
        raise BrokerError("invalid_request", f"Not a notebook this server can scan: {exc}.") from None
    cells = nb["cells"]
    findings = []
    redactions = {}
    for h in hits:
        cell_id = _cell_id(cells, h.cell)
        findings.append({
            "rule_id": h.rule_id, "fingerprint": h.fingerprint, "cell": h.cell, "cell_id": cell_id,
            "field": h.field, "output": h.rel[1] if len(h.rel) > 1 and h.rel[0] == "outputs" else None,
            "line": h.line, "column": h.column, "end_line": h.end_line,
            "end_column": h.end_column,
        })
        if not redact or h.cell is None:
            continue
        key = (h.cell, h.rel)
        if key in redactions:
            continue
        if any(isinstance(p, KeyRef) for p in h.rel):
            redactions[key] = None  # a secret used as a JSON key: only saving (the hook) can rename it
            continue
        redactions[key] = {"cell": h.cell, "cell_id": cell_id, "path": list(h.rel),
                           "value": _text(_resolve(cells[h.cell], h.rel))}
    result = {"findings": findings, "save_hook_mode": hook.mode}
    if redact:
        result["redactions"] = [r for r in redactions.values() if r is not None]
        result["not_redactable"] = sum(1 for r in redactions.values() if r is None)
    return result


def _cell_id(cells, index):
    if index is None:
        return None
    cid = cells[index].get("id")
    return cid if isinstance(cid, str) else None


def _resolve(node, path):
    for part in path:
        node = node[part]
    return node


def _text(value):
    return value if isinstance(value, str) else "".join(value)
