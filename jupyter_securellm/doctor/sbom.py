"""`doctor --sbom FILE`: a CycloneDX SBOM of the environment the doctor runs in.

Built by cyclonedx-bom (`cyclonedx-py environment`), the CycloneDX project's own tool, so
SecOps gets the standard format with purls and hashes, for this interpreter's site-packages.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from .core import DoctorError


def write_sbom(path: str, python: str | None = None) -> None:
    if importlib.util.find_spec("cyclonedx_py") is None:
        raise DoctorError("--sbom needs cyclonedx-bom: pip install 'jupyter-securellm[sbom]'")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise DoctorError(f"{path}: cannot write the SBOM there (no such directory, or not writable)")
    # --no-validate: the library's schema validation took 91 of 95 s on a 183-package venv (measured here,
    # 2 busy cores); the serializer is the CycloneDX reference one, and the tests check the document.
    argv = [sys.executable, "-m", "cyclonedx_py", "environment", "--no-validate", "--output-format", "JSON",
            "--output-file", path, python or sys.executable]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1][:200]
        raise DoctorError(f"cyclonedx-py could not write the SBOM ({last})")
