"""Helpers for the notebook / CLI / git filter / save hook tests.

Keys are generated at run time with `fake_secret` (never committed); golden files hold templates
`{{rule-id:seed}}` that `fill()` expands.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from jupyter_securellm.detect import fake_secret

REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = pathlib.Path(__file__).parent / "golden"
TEMPLATE = re.compile(r"\{\{([a-z0-9-]+):(\d+)\}\}")


def secret(rule: str, seed: int) -> str:
    return fake_secret(rule, seed=seed)


def fill(text: str) -> str:
    """Expand `{{rule:seed}}` templates with generated keys, JSON-escaped (they sit in JSON strings)."""
    return TEMPLATE.sub(lambda m: json.dumps(secret(m.group(1), int(m.group(2))))[1:-1], text)


def template_secrets(text: str) -> list:
    return [secret(m.group(1), int(m.group(2))) for m in TEMPLATE.finditer(text)]


def cli_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_cli(*args, input: bytes | None = None, cwd=None, env=None, timeout=300) -> subprocess.CompletedProcess:
    """`python -m jupyter_securellm ARGS` as a user (or git) runs it; stdout/stderr as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "jupyter_securellm", *map(str, args)],
        input=input, capture_output=True, cwd=cwd, env=env or cli_env(), timeout=timeout,
    )


@pytest.fixture(scope="session")
def engine():
    from jupyter_securellm.notebook import Engine

    return Engine()


class _Kit:
    """The helpers above as a fixture (pytest's importlib mode gives test modules no `import conftest`)."""

    REPO = REPO
    GOLDEN = GOLDEN
    secret = staticmethod(secret)
    fill = staticmethod(fill)
    template_secrets = staticmethod(template_secrets)
    cli_env = staticmethod(cli_env)
    run_cli = staticmethod(run_cli)


@pytest.fixture(scope="session")
def kit():
    return _Kit
