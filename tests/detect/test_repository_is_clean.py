"""Dogfood: the repository scans clean with its own CLI (no key-shaped literal committed, no false alarm)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_repository_scans_clean():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert tracked, "run from a git checkout"
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_securellm", "scan", "--format", "text", *tracked],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
