"""The front end's REST side (scan endpoint, save outcome, recent calls) through a real Jupyter server;
pytest-jupyter's fixtures come from the root conftest's plugins."""
