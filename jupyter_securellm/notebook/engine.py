"""The one place where the notebook code talks to the detection engine (`jupyter_securellm.detect`).

Everything else in this package works on plain ``Hit`` tuples (start, end, rule_id, fingerprint) so the
walking, position mapping and splicing code stays independent of the engine's classes.
"""
from __future__ import annotations

import inspect
from typing import NamedTuple

DEFAULT_PLACEHOLDER = "[REDACTED:{rule_id}]"
DECODE_DEPTH = 2


class Hit(NamedTuple):
    start: int
    end: int
    rule_id: str
    fingerprint: str


class Engine:
    """Findings and placeholders from a `detect.Scanner` or `detect.Redactor`.

    A Redactor is what the server hands us (it knows the secrets read from Vault); the CLI builds a
    Scanner. Either way the same `scan()` call gives positions, so the allowlist can drop findings
    before anything is replaced.
    """

    def __init__(self, detector=None, decode_depth: int = DECODE_DEPTH, placeholder: str | None = None):
        if detector is None:
            from jupyter_securellm.detect import Scanner

            detector = Scanner()
        self.detector = detector
        scan = getattr(detector, "scan", None)
        if scan is None and getattr(detector, "scanner", None) is not None:
            scan = detector.scanner.scan
        if scan is None:
            raise TypeError(f"{type(detector).__name__} has no scan() method")
        self._scan = scan
        try:
            params = inspect.signature(scan).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins
            params = {}
        self._kwargs = {"decode_depth": decode_depth} if "decode_depth" in params else {}
        if placeholder is None:
            placeholder = getattr(detector, "placeholder", None)
        self.placeholder_template = placeholder if isinstance(placeholder, str) else DEFAULT_PLACEHOLDER

    def version(self):
        """Changes whenever the detector learns a new known secret (cached findings are then stale)."""
        scanner = getattr(self.detector, "scanner", self.detector)
        return getattr(scanner, "known_version", None)

    def scan(self, text: str) -> list:
        hits = []
        for f in self._scan(text, **self._kwargs):
            hits.append(Hit(f.start, f.end, f.rule_id, f.fingerprint))
        return hits

    def placeholder(self, rule_id: str) -> str:
        template = self.placeholder_template
        return template.format(rule_id=rule_id) if "{rule_id}" in template else template
