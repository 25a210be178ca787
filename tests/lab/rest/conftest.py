"""The front end's REST side (scan endpoint, save outcome) through a real Jupyter server (pytest-jupyter's
`jp_serverapp`, registered in tests/conftest.py)."""
