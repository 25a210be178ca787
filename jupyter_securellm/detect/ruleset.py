"""A `RuleSet`: one tuple of rules and everything compiled from it, built on first use and kept with it.

Compiled artefacts (the Hyperscan or keyword prefilter, the stream detectors) are immutable, so Scanners
that share a RuleSet share them: the default rules are compiled once per process, by whoever needs them
first, and a new Scanner costs nothing.
"""
from __future__ import annotations

import threading
from functools import lru_cache
from typing import Iterable

from .rules import Rule, default_rules


class _NoRules:
    """An empty rule set (known secrets only) needs no prefilter at all."""

    name = "none"

    @staticmethod
    def rule_hits(_text: str, _data: bytes | None = None) -> dict:
        return {}

    @staticmethod
    def prefilter(_text: str, _data: bytes) -> tuple[dict, None]:
        return {}, None


class RuleSet:
    """Rules plus their compiled prefilter per backend and their partial-match detectors (lazily built)."""

    def __init__(self, rules: Iterable[Rule]):
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._backends: dict[str, object] = {}
        self._partial = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def backend(self, kind: str):
        """The prefilter for `kind` ("hyperscan" or "python"), compiled (or loaded from cache) once."""
        be = self._backends.get(kind)
        if be is None:
            with self._lock:
                be = self._backends.get(kind)
                if be is None:
                    from .backends import HyperscanBackend, PythonBackend

                    if not self.rules:
                        be = _NoRules()
                    else:
                        be = (HyperscanBackend if kind == "hyperscan" else PythonBackend)(self.rules)
                    self._backends[kind] = be
        return be

    def partial_detector_set(self):
        """The rules' detectors for stream partial matching (see `partial`), built once."""
        if self._partial is None:
            with self._lock:
                if self._partial is None:
                    from .partial import DetectorSet, rule_detectors

                    self._partial = DetectorSet(rule_detectors(self.rules))
        return self._partial


@lru_cache(maxsize=1)
def default_ruleset() -> RuleSet:
    """The built-in rules, shared by every Scanner that does not bring its own."""
    return RuleSet(default_rules())


def as_ruleset(rules: Iterable[Rule] | RuleSet | None) -> RuleSet:
    if rules is None:
        return default_ruleset()
    if isinstance(rules, RuleSet):
        return rules
    rules = tuple(rules)
    return default_ruleset() if rules == default_rules() else RuleSet(rules)
