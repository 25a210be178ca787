"""The SecureLLM Jupyter server extension (skeleton; the broker issue fills it in)."""
from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp


class SecureLLM(ExtensionApp):
    """Brokers LLM calls with keys from Vault, scrubs saved notebooks, audits every call."""

    name = "jupyter_securellm"

    def initialize_settings(self):
        pass

    def initialize_handlers(self):
        pass
