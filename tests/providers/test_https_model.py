"""An OpenAI-compatible model server behind HTTPS with its own CA, through the broker (issue 11).

A real Jupyter server, a real kernel, the session OpenBao, and HTTPS stand-ins whose certificates come
from a CA made at run time (`TestCA`). Per model, `ca_bundle` names the CA; without it (or with a
stranger CA, or a certificate for another name) the call fails closed with an error naming the model
and the TLS check, and the model server receives nothing. `ssl_verify: False` works but is shouted
about at start-up. The redirect guard applies over HTTPS too.
"""
from __future__ import annotations

import logging

import pytest

from jupyter_securellm.testing.leaks import assert_no_secret
from jupyter_securellm.testing.providers import TestCA, fingerprint, make_standin
from jupyter_securellm.testing.pytest_plugin import new_provider_key
from jupyter_securellm.testing.server_fixtures import sse_text

MSG = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("model-ca"))


@pytest.fixture(scope="module")
def stranger_ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("stranger-ca"))


@pytest.fixture
def servers(ca, vault_provider_key):
    """HTTPS stand-ins, all accepting the Vault-held key: each model gets its own endpoint."""
    made = {
        "good": make_standin("openai", vault_provider_key, tls=ca),
        "noca": make_standin("openai", vault_provider_key, tls=ca),
        "wrongca": make_standin("openai", vault_provider_key, tls=ca),
        "badname": make_standin("openai", vault_provider_key, tls=ca, cert_hosts=("model.internal",)),
        "insecure": make_standin("openai", vault_provider_key, tls=ca),
        "elsewhere": make_standin("openai", new_provider_key(), tls=ca),  # a redirect target: gets nothing
    }
    for s in made.values():
        s.start()
    yield made
    for s in made.values():
        s.stop()


@pytest.fixture
def securellm_config(openbao, server_token_file, servers, ca, stranger_ca, tmp_path):
    def model(name, **tls):
        return {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai", "secret_key": "api_key",
                "api_base": servers[name].url + "/v1", **tls}

    return {"vault_url": openbao.url, "vault_auth_method": "token", "vault_token_path": str(server_token_file),
            "models": {"good": model("good", ca_bundle=ca.ca_cert),
                       "noca": model("noca"),
                       "wrongca": model("wrongca", ca_bundle=stranger_ca.ca_cert),
                       "badname": model("badname", ca_bundle=ca.ca_cert),
                       "insecure": model("insecure", ssl_verify=False)},
            # the redirect target is allowlisted too: the guard must refuse it anyway (another endpoint)
            "allowed_hosts": [f"127.0.0.1:{s.port}" for s in servers.values()],
            "preload_litellm": False, "audit_log_path": str(tmp_path / "audit.jsonl")}


@pytest.fixture
def jp_server_config(securellm_server_config):
    return securellm_server_config


async def test_llm_magic_over_https_with_the_model_ca_and_fails_closed_without_it(
        kernels, servers, vault_provider_key, server_log):
    """From a real kernel: the right CA works; no CA, a stranger CA and a wrong host name fail closed."""
    kid = await kernels.start()
    await kernels.run(kid, "%load_ext jupyter_securellm\n", timeout=120)
    out = await kernels.run(kid, "%%llm -m good -o ans --no-history\nhello there\n", timeout=120)
    out += await kernels.run(kid, "print('ANSWER', str(ans))", timeout=60)
    assert "ANSWER echo: hello there" in out, out
    assert servers["good"].saw_only(vault_provider_key)
    expected = {"noca": "unknown CA", "wrongca": "unknown CA", "badname": "host name mismatch"}
    for alias, kind in expected.items():
        err = await kernels.run(kid, f"%%llm -m {alias} --no-history\nhello there\n", timeout=120)
        assert f"TLS to model '{alias}' at 127.0.0.1:{servers[alias].port} failed ({kind})" in err, err
        assert servers[alias].requests == [], f"{alias}: the model server received a request"
        assert_no_secret(err, vault_provider_key, f"the kernel's error for {alias}")
    assert "ca_bundle" in err or "host name" in err
    assert_no_secret(server_log(), vault_provider_key, "the server log")


@pytest.mark.parametrize("stream", [False, True])
async def test_https_answers_and_errors_through_the_rest_api(chat, servers, vault_provider_key, stream, server_log):
    code, body, raw = await chat({"model": "good", "messages": MSG, "stream": stream})
    assert code == 200, raw
    assert (sse_text(raw) if stream else body["choices"][0]["message"]["content"]) == "echo: hello there"
    assert [c.credentials for c in servers["good"].requests] == [
        {"header:authorization": fingerprint(vault_provider_key)}]

    code, body, raw = await chat({"model": "noca", "messages": MSG, "stream": stream})
    assert code == 502, raw
    msg = body["error"]["message"]
    assert body["error"]["type"] == "provider_error"
    assert msg.startswith(f"TLS to model 'noca' at 127.0.0.1:{servers['noca'].port} failed (unknown CA)"), msg
    assert "c.SecureLLM.models['noca']" in msg and "ca_bundle" in msg, msg
    assert servers["noca"].requests == []
    for text, where in ((raw, "the answer"), (server_log(), "the server log")):
        assert_no_secret(text, vault_provider_key, where)


def test_ca_bundle_is_refused_where_litellm_builds_the_client_itself(ca):
    """Anthropic's (and Gemini's) HTTP clients are litellm's own: a CA there would be silently unused."""
    from jupyter_securellm.server.request import ModelConfig

    entry = {"model": "anthropic/claude-3-5-haiku-20241022", "secret_path": "llm/a", "secret_key": "k",
             "api_base": "https://claude.internal:8443", "ca_bundle": ca.ca_cert}
    with pytest.raises(ValueError, match=r"\['c'\]: 'ca_bundle'/'ssl_verify' work for OpenAI-compatible models"):
        ModelConfig.from_trait("c", entry)
    entry.update(model="openai/llama3")
    assert ModelConfig.from_trait("c", entry).tls_verify == ca.ca_cert
    for bad, why in (({"ca_bundle": "/nonexistent/ca.pem"}, "is not a file"),
                     ({"ssl_verify": "no"}, "must be True or False"),
                     ({"ssl_verify": False}, "contradict each other"),
                     ({"api_base": "http://127.0.0.1:8000/v1", "allow_http": True}, "https api_base only")):
        with pytest.raises(ValueError, match=why):
            ModelConfig.from_trait("c", dict(entry, **bad))


async def test_ssl_verify_false_works_but_is_reported_loudly(chat, servers, vault_provider_key, securellm_config):
    code, body, raw = await chat({"model": "insecure", "messages": MSG})
    assert code == 200, raw
    assert servers["insecure"].saw_only(vault_provider_key)
    # the start-up check that warned (the server's stderr) warns for that model only
    from traitlets.config import Config

    from jupyter_securellm.server.app import SecureLLM

    app = SecureLLM(config=Config({"SecureLLM": securellm_config}))
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record)
    app.log.addHandler(handler)
    try:
        app.check_config()
    finally:
        app.log.removeHandler(handler)
    loud = [r.getMessage() for r in seen if r.levelno >= logging.WARNING and "SECURITY WARNING" in r.getMessage()]
    assert len(loud) == 1 and "c.SecureLLM.models['insecure'] sets ssl_verify False" in loud[0], loud
    assert "ca_bundle" in loud[0]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_redirect_from_an_https_model_is_refused(chat, servers, vault_provider_key, stream):
    servers["good"].redirect_to = servers["elsewhere"].url
    code, body, raw = await chat({"model": "good", "messages": MSG, "stream": stream})
    assert servers["good"].requests, "the broker never called the model server"
    assert servers["elsewhere"].requests == [], "the redirect target received a request"
    assert code != 200 or "error" in raw, raw
    assert ("egress_denied" in raw or "redirect" in raw), raw
    assert_no_secret(raw, vault_provider_key, "the answer to a redirected call")
