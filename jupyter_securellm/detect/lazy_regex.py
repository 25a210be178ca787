"""Module-level regexes compiled on first use, so importing the engine costs no `re.compile`.

`%load_ext jupyter_securellm` imports the engine and scans the environment at once; most filters and
stream helpers are not needed for that scan (they run on findings, or on streams), and compiling them all
at import was a third of the load time.
"""
from __future__ import annotations

import re

_METHODS = ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split")


class LazyRegex:
    """Stands in for `re.compile(pattern, flags)`; the first method call compiles it and binds the
    compiled pattern's methods on the instance, so later calls cost what a compiled pattern's do."""

    def __init__(self, pattern: str, flags: int = 0):
        self.pattern = pattern
        self.flags = flags

    def compiled(self) -> re.Pattern:
        rx = re.compile(self.pattern, self.flags)
        for name in _METHODS:
            setattr(self, name, getattr(rx, name))
        return rx

    def __getattr__(self, name: str):  # reached only before the first compile (methods then live in __dict__)
        if name not in _METHODS:
            raise AttributeError(name)
        return getattr(self.compiled(), name)

    def __repr__(self) -> str:
        return f"LazyRegex({self.pattern!r})"
