"""jupyter_securellm: safe LLM use from Jupyter notebooks.

Importing this package is cheap on purpose: it pulls in nothing from Jupyter, litellm or hvac.
The IPython extension, the server extension and the detection engine load on first use.
"""
from __future__ import annotations

from ._version import __version__  # noqa: F401 - the public version attribute


def load_ipython_extension(ipython):  # pragma: no cover - thin shim, tested via the kernel package
    from .kernel.extension import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython):  # pragma: no cover
    from .kernel.extension import unload_ipython_extension as _unload

    _unload(ipython)


def _jupyter_server_extension_points():
    return [{"module": "jupyter_securellm.server.app", "app": _server_app()}]


def _server_app():
    from .server.app import SecureLLM

    return SecureLLM


def __getattr__(name):
    # `from jupyter_securellm import secrets` without importing the kernel side up front.
    if name == "secrets":
        from .kernel import secrets

        return secrets
    raise AttributeError(name)
