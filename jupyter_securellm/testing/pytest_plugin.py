"""Pytest fixtures for real test services: an OpenBao server and a stand-in LLM provider.

Load from a test folder's conftest.py by importing the fixtures::

    from jupyter_securellm.testing.pytest_plugin import openbao, openbao_factory, provider, provider_key  # noqa: F401

(``pytest_plugins = ["jupyter_securellm.testing.pytest_plugin"]`` works only in the rootdir's
conftest.py or with ``-p jupyter_securellm.testing.pytest_plugin``: pytest refuses it in a
sub-folder's conftest when the whole suite runs.)

- ``openbao`` (session): one OpenBao server with KV v2 at ``secret/``. Tests share it, so write
  under a unique path (``unique_path`` helps) and do not seal/stop it: use ``openbao_factory``.
- ``openbao_factory`` (function): ``openbao_factory()`` starts a private server, stopped at teardown.
- ``provider`` (function): a :class:`FakeProvider` with a fresh random key in ``provider.key``.
- ``provider_key``: a freshly generated key string of OpenAI's shape (or random if the engine
  is not importable), never a literal.
"""
from __future__ import annotations

import secrets
import uuid

import pytest

from .openbao import OpenBao
from .provider import FakeProvider


def new_provider_key() -> str:
    """A run-time fake provider key (OpenAI-shaped when the detection engine is available)."""
    try:
        from jupyter_securellm.detect import fake_secret

        return fake_secret("openai-api-key")
    except Exception:  # engine not there yet: a random opaque key works the same for the provider
        return "test-" + secrets.token_urlsafe(32)


@pytest.fixture(scope="session")
def openbao(tmp_path_factory):
    server = OpenBao(tmp_path_factory.mktemp("openbao"))
    server.start()
    server.enable_kv("secret")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def openbao_factory(tmp_path):
    started: list[OpenBao] = []

    def make(**kw) -> OpenBao:
        server = OpenBao(tmp_path / f"openbao{len(started)}", **kw)
        started.append(server)
        server.start()
        server.enable_kv("secret")
        return server

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def unique_path():
    """A KV path prefix no other test uses, e.g. ``t-1a2b3c4d``."""
    return "t-" + uuid.uuid4().hex[:8]


@pytest.fixture
def provider_key():
    return new_provider_key()


@pytest.fixture
def provider(provider_key):
    with FakeProvider(provider_key) as fp:
        yield fp
