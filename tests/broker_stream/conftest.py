"""The broker tests of tests/server, on the same in-process Jupyter server
(`jupyter_securellm.testing.server_fixtures`: real OpenBao, stand-in provider)."""
import pytest


@pytest.fixture
def jp_server_config(securellm_server_config):
    return securellm_server_config
