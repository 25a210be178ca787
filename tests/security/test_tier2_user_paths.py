"""Tier 2: `{user}` games. Provider keys live per user (`users/{user}/openai`, shared fallback
`users/openai`) and an admin's over-broad `user_secret_paths = ["users/*"]` covers them: no
spelling of any user's key path, nor the fallback, may come back from `secrets/get`.
"""
from __future__ import annotations

import json
import pathlib

import pytest

from jupyter_securellm.detect import fake_secret


@pytest.fixture
def jp_server_config(securellm_server_config):  # the in-process broker server (testing/server_fixtures.py)
    return securellm_server_config


@pytest.fixture
def securellm_config(openbao, server_token_file, provider):  # provider: its key is stored nowhere; per-user keys are written below
    return {"vault_url": openbao.url, "vault_auth_method": "token", "vault_token_path": str(server_token_file),
            "models": {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "users/{user}/openai",
                               "secret_key": "api_key", "api_base": provider.url + "/v1", "allow_http": True}},
            "allowed_hosts": [f"127.0.0.1:{provider.port}"], "user_secret_paths": ["users/*"],
            "preload_litellm": False}


async def test_no_spelling_of_a_user_key_path_is_served(broker_api, openbao):
    code, status, _ = await broker_api("status")
    assert code == 200
    me = status["user"]
    keys = {f"users/{me}/openai": fake_secret("openai-api-key"), "users/bob/openai": fake_secret("openai-api-key"),
            "users/openai": fake_secret("openai-api-key")}
    for path, value in keys.items():
        openbao.write_secret(path, {"api_key": value})
    openbao.write_secret(f"users/{me}/warehouse", {"password": "pw-" + fake_secret("openai-api-key")[-20:]})
    paths = [f"users/{me}/openai", "users/bob/openai", "users/openai", "users/{user}/openai", f"/users/{me}/openai/",
             f"users/{me.upper()}/openai", f"users//{me}/openai", f"users/./{me}/openai", f"users/{me}/../openai",
             f"users/{me}%2Fopenai", f"users/{me}/openai ", "users/*/openai", "users/bob/../openai", "users/%7Buser%7D/openai"]
    answers = []
    for p in paths:
        for k in ("api_key", "API_KEY"):
            c, _, raw = await broker_api("secrets/get", {"path": p, "key": k})
            answers.append((p, c, raw))
    c, body, _ = await broker_api("secrets/get", {"path": f"users/{me}/warehouse", "key": "password"})
    assert c == 200 and body["value"].startswith("pw-"), "control: a non-provider user path is served"
    served = [(p, c) for p, c, raw in answers if c == 200]
    assert not served, served
    blob = json.dumps(answers)
    for path, value in keys.items():
        leaked = value in blob
        assert not leaked, f"the key at {path} was returned"
