"""The one test house: shared fixtures are pytest plugins in `jupyter_securellm/testing/`, registered
here for the whole suite (as the Jupyter extension template does); folder conftests hold only what
their own folder uses.

Every test is marked with its room (the folder under tests/: `detect`, `notebook`, `kernel`,
`server`, `vault`, `security`, ...), so `pytest -m detect` is a fast inner loop; `make test` runs all.
"""
import os
from pathlib import Path

# Offline: litellm reads its bundled model cost map instead of fetching one at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = [
    "pytest_jupyter.jupyter_server",  # jp_serverapp, jp_fetch, async tests
    "jupyter_securellm.testing.pytest_plugin",  # openbao (one per session), openbao_factory, provider, standin_key
    "jupyter_securellm.testing.server_fixtures",  # the broker in an in-process Jupyter server
    "jupyter_securellm.testing.kernels",  # Kernel, ServerKernel, demo_stack, kernel_factory
    "jupyter_securellm.testing.postgres",  # postgres (one cluster per session), postgres_url
    "jupyter_securellm.testing.hub",  # a real JupyterHub stack
]

TESTS = Path(__file__).resolve().parent


def _room(path: Path) -> str | None:
    """The folder directly under tests/ that holds `path` (its room), or None."""
    try:
        parts = path.resolve().relative_to(TESTS).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 else None


def pytest_configure(config):
    # Rooms are declared in pyproject.toml with a description; a new folder gets a marker too, so
    # --strict-markers never trips on a room added later.
    declared = {line.split(":")[0].strip() for line in config.getini("markers")}
    for folder in sorted(p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        if folder not in declared:
            config.addinivalue_line("markers", f"{folder}: tests in tests/{folder}/")


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        room = _room(Path(str(item.path)))
        if room is not None:
            item.add_marker(getattr(pytest.mark, room))
