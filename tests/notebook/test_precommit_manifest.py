"""`.pre-commit-hooks.yaml` is a valid pre-commit manifest whose entries are our real commands."""
import shlex
import sys

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REQUIRED = {"id", "name", "entry", "language"}
KNOWN = REQUIRED | {"description", "types", "types_or", "exclude_types", "files", "exclude", "args",
                    "require_serial", "pass_filenames", "always_run", "stages", "verbose",
                    "minimum_pre_commit_version", "additional_dependencies", "language_version", "alias"}


def test_manifest(kit):
    hooks = yaml.safe_load((kit.REPO / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(hooks, list) and hooks
    scripts = tomllib.loads((kit.REPO / "pyproject.toml").read_text())["project"]["scripts"]
    ids = [h["id"] for h in hooks]
    assert "jupyter-securellm" in ids and len(ids) == len(set(ids))
    for hook in hooks:
        assert REQUIRED <= set(hook) and set(hook) <= KNOWN, hook
        assert hook["language"] == "python"
        cmd = shlex.split(hook["entry"])
        assert cmd[0] in scripts
    scan = next(h for h in hooks if h["id"] == "jupyter-securellm")
    assert shlex.split(scan["entry"])[1:] == ["scan"]


def test_scan_hook_fails_a_commit_with_a_key(kit, tmp_path):
    """What pre-commit runs: the entry plus the staged file names; exit 1 fails the commit."""
    hooks = yaml.safe_load((kit.REPO / ".pre-commit-hooks.yaml").read_text())
    scan = next(h for h in hooks if h["id"] == "jupyter-securellm")
    args = shlex.split(scan["entry"])[1:]
    ok, bad = tmp_path / "ok.py", tmp_path / "bad.ipynb"
    ok.write_text("print('hi')\n")
    bad.write_text('{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "'
                   + kit.secret("github-token", 41) + '"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    assert kit.run_cli(*args, ok).returncode == 0
    proc = kit.run_cli(*args, ok, bad)
    assert proc.returncode == 1 and b"bad.ipynb" in proc.stdout
