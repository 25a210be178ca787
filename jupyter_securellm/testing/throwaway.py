"""Throwaway virtual environments and wheels built at run time, for supply-chain tests.

`make_wheel` writes a real wheel (zip with METADATA, WHEEL and a RECORD of sha256 digests) with no
build backend and no network, so a test can install e.g. a fake `litellm 1.82.7` carrying a `.pth`
start-up hook, exactly as the malicious upload did. `Throwaway` is a `python -m venv` whose
interpreter runs our package from this checkout (PYTHONPATH) while its own site-packages holds
only what the test put there.
"""
from __future__ import annotations

import base64
import hashlib
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import jupyter_securellm

REPO = Path(jupyter_securellm.__file__).resolve().parent.parent


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(outdir, name: str, version: str, files: dict[str, str]) -> Path:
    """A pure-Python wheel `name-version-py3-none-any.whl` holding `files` (path -> text)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    members = dict(files)
    members[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    members[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: jupyter-securellm-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{p},{_digest(t.encode())},{len(t.encode())}" for p, t in members.items()]
    record.append(f"{info}/RECORD,,")
    members[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = Path(outdir) / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, t in members.items():
            z.writestr(p, t)
    return path


class Throwaway:
    """A fresh venv (no pip inside: installs go through this interpreter's pip with --target)."""

    def __init__(self, root):
        self.root = Path(root)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.root)], check=True)
        self.python = str(self.root / "bin" / "python")
        out = subprocess.run([self.python, "-c", "import site; print(site.getsitepackages()[0])"],
                             capture_output=True, text=True, check=True)
        self.site = Path(out.stdout.strip())

    def install_wheel(self, wheel) -> None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                        "--no-compile", "--target", str(self.site), str(wheel)], check=True,
                       env={**os.environ, "PIP_CONSTRAINT": "", "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": os.devnull})

    def env(self) -> dict:
        """This checkout first, then the test venv's packages (importable, but their .pth files are not run)."""
        paths = [str(REPO)] + list(site.getsitepackages())
        return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONNOUSERSITE": "1"}

    def run(self, *argv, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([self.python, *argv], capture_output=True, text=True, env=self.env(), timeout=600, **kw)

    def doctor(self, *args) -> subprocess.CompletedProcess:
        return self.run("-m", "jupyter_securellm", "doctor", *args)
