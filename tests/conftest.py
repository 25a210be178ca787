"""Fixture modules shared by every test folder (jupyter_securellm/testing/)."""
pytest_plugins = [
    "jupyter_securellm.testing.hub",
]
