"""Where the engine keeps compiled artefacts between processes (the Hyperscan databases, the parsed rules).

Everything kept here is derived from the rules' source and checked against it when loaded, so a stale
file is rebuilt, never used. It is trusted like the rest of the user's home directory.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/jupyter_securellm` (default `~/.cache/jupyter_securellm`)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "jupyter_securellm"
