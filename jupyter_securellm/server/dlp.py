"""Prompt DLP: no secret leaves the server inside a prompt.

Every string a request carries to the provider is scanned: all strings of every message (content,
parts, names, tool-call arguments...) and of the parameters (tool definitions, response_format,
stop...), except structural fields and inline data URLs (base64 images are not text a user typed).
'block' (default) refuses the call with 422 `dlp_blocked`; 'redact' replaces the secret and sends
the rest. Findings carry a rule id and a fingerprint, never the value.
"""
from __future__ import annotations

import copy
from typing import Iterator

from .errors import BrokerError

_STRUCTURAL = frozenset({"role", "type", "tool_call_id", "id", "finish_reason"})


def _strings(obj, where: str) -> Iterator[tuple[str, object, object, str]]:
    """(where, container, key, text) for every string to scan inside `obj`."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, str):
                if k in _STRUCTURAL or (k == "url" and v.startswith("data:")):
                    continue
                yield where, obj, k, v
            else:
                yield from _strings(v, where)
    elif isinstance(obj, list):
        for j, v in enumerate(obj):
            if isinstance(v, str):
                yield where, obj, j, v
            else:
                yield from _strings(v, where)


class PromptDLP:
    """Scans (and in 'redact' mode rewrites) a copy of the messages and parameters of a request."""

    def __init__(self, redactor, mode: str = "block"):
        self.redactor = redactor
        self.mode = mode

    def texts(self, messages: list, params: dict):
        for i, m in enumerate(messages):
            yield from _strings(m, f"message {i}")
        for k, v in params.items():
            if isinstance(v, str):
                yield f"parameter {k!r}", params, k, v
            else:
                yield from _strings(v, f"parameter {k!r}")

    def check(self, messages, params=None) -> tuple[list, dict, list]:
        """Return (messages, params, findings), copies; raise BrokerError('dlp_blocked') in block mode."""
        messages, params = copy.deepcopy(list(messages)), copy.deepcopy(dict(params or {}))
        found = []
        scanner = self.redactor.scanner
        for where, container, key, text in self.texts(messages, params):
            fs = scanner.scan(text)
            if not fs:
                continue
            found.extend({"where": where, "rule_id": f.rule_id, "fingerprint": f.fingerprint} for f in fs)
            if self.mode == "redact":
                container[key] = self.redactor.redact(text)
        if found and self.mode != "redact":
            rules = ", ".join(sorted({f["rule_id"] for f in found}))
            raise BrokerError(
                "dlp_blocked",
                f"The prompt was not sent: it contains what looks like a secret ({rules}) in {found[0]['where']}; "
                "remove it and use secrets.get() to keep credentials out of prompts.",
                findings=found,
            )
        return messages, params, found
