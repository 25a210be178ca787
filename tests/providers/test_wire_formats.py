"""Real provider wire formats through the broker: Anthropic Messages, Azure OpenAI, Google Gemini (AI
Studio) and OpenAI-compatible, each a stand-in (jupyter_securellm/testing/providers.py) that checks the
credential exactly where that provider expects it.

For each format: `%%llm` works end to end from a kernel; the provider saw exactly the key held in
OpenBao (and only where it belongs); a key the provider echoes is redacted in the stream; a 307
redirect to another host is refused and that host receives nothing. For Gemini, whose key may travel
in a URL, the key appears in no log line, answer or audit record.
"""
from __future__ import annotations

import json

import pytest

from jupyter_securellm.testing.leaks import assert_no_secret
from jupyter_securellm.testing.providers import fingerprint, make_standin
from jupyter_securellm.testing.pytest_plugin import new_provider_key
from jupyter_securellm.testing.server_fixtures import audit_records, sse_text, until

# litellm model string and the api_base suffix litellm expects for each format
FORMATS = {
    "anthropic": ("anthropic/claude-3-5-haiku-20241022", ""),
    "azure": ("azure/gpt4o-prod", ""),
    "gemini": ("gemini/gemini-2.0-flash", "/v1beta"),
    "openai": ("openai/gpt-4o-mini", "/v1"),
}
# Where each provider takes its key (as the stand-in records it).
KEY_PLACE = {"anthropic": "header:x-api-key", "azure": "header:api-key", "gemini": "header:x-goog-api-key",
             "openai": "header:authorization"}
MSG = [{"role": "user", "content": "hello there"}]


@pytest.fixture(params=sorted(FORMATS))
def fmt(request):
    return request.param


@pytest.fixture
def standin(fmt, vault_provider_key):
    """The provider: accepts only the key the broker reads from OpenBao (`vault_provider_key`)."""
    with make_standin(fmt, vault_provider_key) as s:
        yield s


@pytest.fixture
def elsewhere(fmt):
    """Another host (not allowlisted) speaking the same format: it must receive nothing."""
    with make_standin(fmt, new_provider_key()) as s:
        yield s


@pytest.fixture
def securellm_config(openbao, server_token_file, standin, vault_provider_key, fmt, tmp_path):
    model, suffix = FORMATS[fmt]
    return {"vault_url": openbao.url, "vault_auth_method": "token", "vault_token_path": str(server_token_file),
            "models": {"m": {"model": model, "secret_path": "llm/openai", "secret_key": "api_key",
                             "api_base": standin.url + suffix, "allow_http": True}},
            "allowed_hosts": [f"127.0.0.1:{standin.port}"], "preload_litellm": False,
            "audit_log_path": str(tmp_path / "audit.jsonl")}


@pytest.fixture
def jp_server_config(securellm_server_config):
    return securellm_server_config


async def test_llm_magic_end_to_end_with_exactly_the_vault_key(fmt, kernels, standin, vault_provider_key):
    kid = await kernels.start()
    out = await kernels.run(kid, "%load_ext jupyter_securellm\n", timeout=120)
    out = await kernels.run(kid, "%%llm -m m -o ans --no-history\nhello there\n", timeout=120)
    out = await kernels.run(kid, "print('ANSWER', str(ans))", timeout=60)
    assert "ANSWER echo: hello there" in out, out
    assert standin.saw_only(vault_provider_key), [c.credentials for c in standin.requests]
    assert {place for c in standin.requests for place in c.credentials} == {KEY_PLACE[fmt]}
    assert vault_provider_key not in out


@pytest.mark.parametrize("stream", [True, False])
async def test_answers_and_streams_carry_the_key_only_where_the_provider_wants_it(
        fmt, chat, standin, vault_provider_key, stream):
    code, body, raw = await chat({"model": "m", "messages": MSG, "stream": stream})
    assert code == 200, raw
    text = sse_text(raw) if stream else body["choices"][0]["message"]["content"]
    assert text == "echo: hello there"
    [call] = standin.requests
    assert call.credentials == {KEY_PLACE[fmt]: fingerprint(vault_provider_key)}
    if fmt == "gemini":
        assert call.path.split("?")[0].endswith(":streamGenerateContent" if stream else ":generateContent")
    if fmt == "azure":
        assert "api-version=" in call.path and call.path.startswith("/openai/deployments/gpt4o-prod/")


async def test_a_stream_is_recorded_with_the_providers_token_count(fmt, chat, standin, tmp_path):
    """The broker asks litellm for the usage chunk: forwarded to OpenAI and Azure, built from Anthropic's and
    Gemini's own usage events (which never see the option); the audit record has the provider's count."""
    code, _, raw = await chat({"model": "m", "messages": MSG, "stream": True})
    assert code == 200 and sse_text(raw) == "echo: hello there", raw
    assert ("stream_options" in (standin.requests[-1].body or {})) == (fmt in ("openai", "azure"))
    audit = tmp_path / "audit.jsonl"
    assert await until(lambda: audit_records(audit, "call"), 20), "the stream was never recorded"
    # one token per word at the stand-ins, not the estimate from the 17 characters streamed (5)
    assert audit_records(audit, "call")[-1]["tokens_out"] == 3


async def test_an_echoed_key_is_redacted_in_the_stream(fmt, chat, standin, vault_provider_key, server_log):
    standin.echo_key, standin.chunk_chars = True, 5  # the key arrives cut across many events
    code, _, raw = await chat({"model": "m", "messages": MSG, "stream": True})
    assert code == 200, raw
    text = sse_text(raw)
    assert text.startswith("echo: hello there key=") and "[REDACTED" in text, text
    assert_no_secret(raw, vault_provider_key, f"the {fmt} stream")
    assert_no_secret(server_log(), vault_provider_key, "the server log")


@pytest.mark.parametrize("stream", [True, False])
async def test_a_redirect_to_another_host_is_refused_and_that_host_gets_nothing(
        fmt, chat, standin, elsewhere, vault_provider_key, stream):
    standin.redirect_to = elsewhere.url
    code, body, raw = await chat({"model": "m", "messages": MSG, "stream": stream})
    assert standin.requests, "the broker never called the provider"
    assert elsewhere.requests == [], f"{len(elsewhere.requests)} request(s) reached the other host"
    assert code != 200 or "error" in raw, raw
    assert_no_secret(raw, vault_provider_key, "the answer to a redirected call")


@pytest.mark.parametrize("fmt", ["gemini"], indirect=True)
async def test_gemini_key_appears_in_no_log_exception_audit_record_or_answer(
        fmt, chat, standin, vault_provider_key, server_log, tmp_path):
    answers = []
    for stream in (False, True):
        answers.append(await chat({"model": "m", "messages": MSG, "stream": stream}))
    standin.echo_key = True
    answers.append(await chat({"model": "m", "messages": MSG, "stream": True}))
    standin.echo_key = False
    standin.fail_status = 500  # an error answer: litellm's exception text goes through the broker's log
    answers.append(await chat({"model": "m", "messages": MSG}))
    standin.fail_status = None
    standin.key = new_provider_key()  # the Vault key is now wrong: the provider's 400 "API key not valid"
    answers.append(await chat({"model": "m", "messages": MSG}))
    assert [a[0] for a in answers[:3]] == [200, 200, 200]
    assert all(a[0] >= 400 for a in answers[3:]), [a[0] for a in answers]
    audit = tmp_path / "audit.jsonl"
    places = {"answers": json.dumps([a[2] for a in answers]), "server log": server_log(),
              "audit log": audit.read_text() if audit.exists() else ""}
    for where, text in places.items():
        assert_no_secret(text, vault_provider_key, where)
    assert places["audit log"], "the audit log recorded nothing"
