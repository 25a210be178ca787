"""Which backend a kernel talks to: the broker (server-side keys) or direct mode (kernel reads Vault).

Its own module so that the extension, the magics and `secrets.get` can all ask for the backend
without importing one another (the old extension -> magics -> secrets -> extension circle).
"""
from __future__ import annotations

import os

from ..protocol import URL_ENV
from .client import SecureLLMError

_ACTIVE_MAGICS = None  # the loaded extension's magics, for secrets.get() and the chat widget


def set_active_magics(magics) -> None:
    """Called by the extension at load (magics) and unload (None)."""
    global _ACTIVE_MAGICS
    _ACTIVE_MAGICS = magics


def active_magics():
    return _ACTIVE_MAGICS


def make_backend(magics=None):
    """Broker when the server gave this kernel one; else direct mode if configured; else a clear error."""
    from .client import BrokerClient

    mode = getattr(magics, "mode", "auto")
    timeout = getattr(magics, "timeout", 120.0)
    if mode == "broker" or (mode == "auto" and os.environ.get(URL_ENV)):
        return BrokerClient.from_env(timeout)
    if mode == "direct" or (mode == "auto" and magics is not None and magics.models):
        from .direct import DirectBackend

        return DirectBackend.from_magics(magics)
    raise SecureLLMError("no_broker")


def current_backend():
    """The active magics' backend, or (no %load_ext yet) one built from the environment."""
    if _ACTIVE_MAGICS is not None:
        return _ACTIVE_MAGICS.backend
    from .client import take_token_from_env

    take_token_from_env()
    return make_backend(None)
