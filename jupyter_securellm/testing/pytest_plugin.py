"""Pytest fixtures for real test services: an OpenBao server and a stand-in LLM provider.

Registered for the whole suite by ``pytest_plugins`` in tests/conftest.py (elsewhere:
``pytest -p jupyter_securellm.testing.pytest_plugin``).

- ``openbao`` (session): the one shared OpenBao server of a run, KV v2 at ``secret/`` and the
  broker's read policy ``BROKER_POLICY`` (``llm/*``, ``db/*``, ``users/*``). Tests share it, so
  write under a unique path (``unique_path`` helps) and never seal, stop or reconfigure it: a
  test that needs that starts a private server with ``openbao_factory``.
- ``openbao_factory`` (function): ``openbao_factory()`` starts a private server, stopped at teardown.
- ``standin_key``: a freshly generated key of OpenAI's shape (or random if the engine is not
  importable), never a literal, stored nowhere.
- ``provider`` (function): a :class:`FakeProvider` that accepts exactly ``standin_key``
  (also in ``provider.key``).

It also redacts failure reports: pytest prints a failing test's arguments and assertion operands,
which would put a run-time fake key (``standin_key``, a ``fake_secret``) into the CI log. Stored
nowhere and valid nowhere, it still looks real there, so the report passes through the engine first.
"""
from __future__ import annotations

import re
import secrets
import uuid

import pytest

from .openbao import OpenBao
from .provider import FakeProvider

# The policy a broker's Vault token gets on the shared server: read the provider keys and user secrets.
BROKER_POLICY = "securellm-broker"
BROKER_POLICY_PATHS = ["llm/*", "db/*", "users/*"]

def new_provider_key() -> str:
    """A run-time fake provider key (OpenAI-shaped when the detection engine is available)."""
    try:
        from jupyter_securellm.detect import fake_secret

        return fake_secret("openai-api-key")
    except Exception:  # engine not there yet: a random opaque key works the same for the provider
        return "test-" + secrets.token_urlsafe(32)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:  # setup, call or teardown
        args = getattr(item, "funcargs", {})
        redact_report(report, [v for k, v in args.items() if isinstance(v, str) and _SECRET_NAME.search(k)])


_SECRET_NAME = re.compile(r"key|token|secret|password", re.I)  # fixtures whose value is a credential


def redact_report(report, known: list[str] = ()) -> None:
    """Replace key-shaped text (and the known `known` values) in a failure report and its captured output."""
    from jupyter_securellm.detect import Redactor

    redactor = Redactor()
    for value in known:
        try:
            redactor.add_secret(value)
        except ValueError:  # too short to be a credential
            pass
    if report.longrepr is not None:
        text = str(report.longrepr)
        clean = redactor.redact(text)
        if clean != text:
            report.longrepr = clean
    report.sections = [(title, redactor.redact(body)) for title, body in report.sections]


@pytest.fixture(scope="session")
def openbao(tmp_path_factory):
    server = OpenBao(tmp_path_factory.mktemp("openbao"))
    server.start()
    server.enable_kv("secret")
    server.read_policy(BROKER_POLICY, BROKER_POLICY_PATHS)
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
def standin_key():
    """A fresh key for the stand-in provider, stored nowhere (`vault_provider_key` stores it in OpenBao)."""
    return new_provider_key()


@pytest.fixture
def provider(standin_key):
    """The stand-in OpenAI-compatible provider on 127.0.0.1; it accepts only `standin_key`."""
    with FakeProvider(standin_key) as fp:
        yield fp
