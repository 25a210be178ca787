"""The broker tests run against the in-process Jupyter server of `jupyter_securellm.testing.server_fixtures`
(session OpenBao, stand-in provider): see that module for the fixtures."""
import pytest


@pytest.fixture
def jp_server_config(securellm_server_config):
    return securellm_server_config
