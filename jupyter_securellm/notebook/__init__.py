"""Notebooks and repositories: scan and scrub .ipynb and text files, map findings to the file as stored.

Pure core (no Jupyter server imports): `process_notebook` / `process_text` for files as stored,
`scrub_notebook_model` for an in-memory notebook (the server's save hook), `Engine` to wrap the
detection engine, and the allowlist (pragmas and baseline).
"""
from __future__ import annotations

from .allowlist import Baseline, BaselineError, find_default_baseline, pragma_allows
from .core import FieldHit, FileFinding, FileResult, process_notebook, process_text, scrub_notebook_model, scrub_text
from .engine import Engine, Hit
from .fields import Field, NotebookError, iter_fields

__all__ = [
    "Baseline",
    "BaselineError",
    "Engine",
    "Field",
    "FieldHit",
    "FileFinding",
    "FileResult",
    "Hit",
    "NotebookError",
    "find_default_baseline",
    "iter_fields",
    "pragma_allows",
    "process_notebook",
    "process_text",
    "scrub_notebook_model",
    "scrub_text",
]
