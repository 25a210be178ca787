"""Prompt DLP in redact mode, response redaction of key-shaped strings, and log redaction."""
import json
import logging

import pytest

from jupyter_securellm.detect import fake_secret


@pytest.fixture
def securellm_config(securellm_config):
    securellm_config["prompt_dlp_mode"] = "redact"
    return securellm_config


async def test_redact_mode_sends_the_prompt_without_the_secret(broker_api, provider):
    leaked = fake_secret("aws-access-key-id")
    code, body, raw = await broker_api("chat/completions", {
        "model": "gpt", "messages": [{"role": "user", "content": f"why does {leaked} fail?"}]})
    assert code == 200
    sent = json.dumps(provider.requests[-1].body)
    assert leaked not in sent and "[REDACTED:aws-access-key-id]" in sent
    assert leaked not in raw


async def test_key_shaped_strings_in_answers_are_redacted_streaming_too(broker_api, provider):
    other = fake_secret("anthropic-api-key")  # not a known secret: caught by its shape
    provider.reply = f"here: {other} done"
    code, _, raw = await broker_api("chat/completions", {
        "model": "gpt", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert code == 200 and other not in raw
    text = "".join((json.loads(e[6:])["choices"] or [{"delta": {}}])[0]["delta"].get("content") or ""
                   for e in raw.split("\n\n") if e.startswith("data: {"))
    assert text == "here: [REDACTED:anthropic-api-key] done"


async def test_logs_never_show_the_key(broker_api, provider, vault_provider_key, server_log, jp_serverapp):
    code, _, _ = await broker_api("chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "x"}]})
    assert code == 200
    # anything that logs the key (litellm debug output, an exception text) is redacted on the way out
    logging.getLogger("LiteLLM").warning("request headers: Authorization: Bearer %s", vault_provider_key)
    jp_serverapp.log.error("oops %s", vault_provider_key)
    try:
        raise RuntimeError(f"provider said: bad key {vault_provider_key}")
    except RuntimeError:
        logging.getLogger("tornado.application").exception("Uncaught exception")
    log = server_log()
    assert vault_provider_key not in log
    assert log.count("[REDACTED:") >= 3
