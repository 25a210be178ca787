"""Fixtures for the kernel side: a real IPython shell. Real kernels (`kernel_factory`, `server_kernel`,
`demo_stack`) come from the `jupyter_securellm.testing.kernels` plugin (tests/conftest.py)."""
from __future__ import annotations

import os
import secrets as pysecrets
import sys

import pytest

from jupyter_securellm.testing.leaks import assert_absent


@pytest.fixture(name="assert_absent")
def assert_absent_fixture():
    return assert_absent


@pytest.fixture
def fake_key():
    from jupyter_securellm.detect import fake_secret

    return fake_secret("openai-api-key")


@pytest.fixture
def random_secret():
    """A known secret with no recognisable shape: caught only because it is registered."""
    return "pw-" + pysecrets.token_urlsafe(24)


@pytest.fixture
def restore_env():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def shell(tmp_path, restore_env):
    """A fresh real IPython InteractiveShell with an on-disk history DB; unloads the extension after."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    InteractiveShell.clear_instance()
    cfg = Config()
    cfg.HistoryManager.hist_file = str(tmp_path / "history.sqlite")
    ip = InteractiveShell.instance(config=cfg)
    saved_streams = (sys.stdout, sys.stderr)
    yield ip
    from jupyter_securellm.kernel import extension

    extension.unload_ipython_extension(ip)
    sys.stdout, sys.stderr = saved_streams
    ip.history_manager.end_session()
    InteractiveShell.clear_instance()
