"""Tier 2 on a real JupyterHub: the package works under `jupyterhub-singleuser` unchanged.

Each user's server runs the broker itself (`broker_mode = "local"`, the default) with a Vault token
of its own; the user and the groups come from the Hub (groups feed policy input.groups and budgets).
"""
from __future__ import annotations

import json

import pytest

from jupyter_securellm.testing.hub import HubStack, http, process_memory_contains

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def local_hub(openbao):
    from jupyter_securellm.testing.provider import FakeProvider
    from jupyter_securellm.testing.pytest_plugin import new_provider_key

    with FakeProvider(new_provider_key()) as provider:
        stack = HubStack(openbao, provider, mode="local").start()
        try:
            stack.start_server(stack.alice)
            yield stack
        finally:
            stack.stop()


def test_singleuser_server_brokers_with_hub_identity_and_groups(local_hub):
    st = local_hub
    k = st.kernel(st.alice)
    try:
        k.run("import os, json\nTOKEN = os.environ['JUPYTER_SECURELLM_KERNEL_TOKEN']\nURL = os.environ['JUPYTER_SECURELLM_URL']"
              "\n%load_ext jupyter_securellm")
        out, err = k.run("%%llm -m gpt\nhello from tier two")
        assert not err and "echo: hello from tier two" in out, (out, err)
        assert st.provider.requests and all(r.auth_ok for r in st.provider.requests)
        status = k.json('''
import urllib.request
req = urllib.request.Request(URL + "/status", headers={"X-SecureLLM-Token": TOKEN})
with urllib.request.urlopen(req, timeout=60) as r:
    print(r.read().decode())
''')
        assert status["user"] == st.alice
        assert status["groups"] == ["analysts"], "the Hub's groups must reach the broker"
        assert "tier" not in status or status["tier"] != 3
        # tier 2 honestly: the key is in the user's own server process (non-dumpable; root reads it)
        assert process_memory_contains(st.server_pid(st.alice), st.provider.key.encode())
        # the browser path: Hub-authenticated through the proxy with a token of Alice's
        tok = st.user_token(st.alice)
        code, body = http("GET", st.user_url(st.alice, "jupyter-securellm/v1/status"), token=tok)
        assert code == 200 and body["user"] == st.alice and body["groups"] == ["analysts"], body
        assert json.dumps(body).find(st.provider.key) == -1
    finally:
        k.shutdown()
