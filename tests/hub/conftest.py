"""The Hub tests use the shared session OpenBao; `hub_stack` comes from jupyter_securellm.testing.hub
(both registered in tests/conftest.py)."""
