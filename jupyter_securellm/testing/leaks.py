"""The forms a leaked secret can take, and assertions that none of them appears in a text.

Shared by the kernel tests, the red-team tests and anything else that proves a secret absent:
a test that only looked for the raw value would pass while the base64 or hex of it leaked.
"""
from __future__ import annotations

import base64
import json
import urllib.parse


def encodings(value: str) -> dict[str, str]:
    """The forms of a secret a leak could take; none may appear in any output."""
    raw = value.encode()
    return {
        "raw": value,
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "urlencoded": urllib.parse.quote(value, safe=""),
        "reversed": value[::-1],
    }


def assert_absent(text: str, value: str, where: str = "output") -> None:
    """Fail, naming the form (never the value), if any of `encodings(value)` is in `text`."""
    for name, form in encodings(value).items():
        assert form not in text, f"the secret ({name} form) leaked into {where}"


def secret_forms(value: str) -> dict[str, str]:
    """`encodings()` plus the forms a tier-1 user produces by hand (lists, spaced out, JSON-escaped)."""
    forms = encodings(value)
    forms["json-list"] = json.dumps(list(value))
    forms["py-list"] = repr(list(value))
    forms["py-list-wrapped"] = ",\n ".join(map(repr, value))
    forms["json-list-escaped"] = json.dumps(json.dumps(list(value)))[1:-1]
    forms["spaced"] = " ".join(value)
    return forms


def find_leaks(text: str, value: str) -> list[str]:
    """Names of the forms of `value` present in `text` (empty = clean)."""
    return [name for name, form in secret_forms(value).items() if form and form in text]


def assert_no_secret(text: str, value: str, where: str) -> None:
    """Fail, naming the forms found (never the value), if any of `secret_forms(value)` is in `text`."""
    leaks = find_leaks(text, value)
    assert not leaks, f"secret leaked into {where} as: {', '.join(leaks)}"
