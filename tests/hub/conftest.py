"""tests/hub: `hub_stack` (jupyter_securellm.testing.hub) and `openbao` come from the plugins that
tests/conftest.py registers; nothing is local to this folder."""
