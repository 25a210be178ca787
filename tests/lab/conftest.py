"""Fixtures for the JupyterLab front end's tests: a real Jupyter server (pytest-jupyter, registered in
tests/conftest.py) for the REST side, and one real JupyterLab + Chromium per browser-test module
(jupyter_securellm.testing.lab)."""
