"""secrets/get with per-user model keys: the caller's path, other users' paths and the shared
fallback path are all provider-key paths and are refused, even under catch-all globs."""
import secrets as pysecrets

import pytest

from jupyter_securellm.detect import fake_secret


@pytest.fixture
def securellm_config(securellm_config):
    gpt = securellm_config["models"]["gpt"]
    securellm_config["models"]["mine"] = dict(gpt, secret_path="users/{user}/openai")
    securellm_config["user_secret_paths"] = ["*", "users/*"]
    return securellm_config


async def test_per_user_and_shared_fallback_key_paths_are_refused(broker_api, openbao, jp_serverapp):
    assert "mine" in jp_serverapp.web_app.settings["jupyter_securellm_broker"].models
    owner = jp_serverapp.web_app.settings["jupyter_securellm_app"].owner
    shared, other_user, mine = (fake_secret("openai-api-key") for _ in range(3))
    openbao.write_secret("users/openai", {"api_key": shared})
    openbao.write_secret("users/bob/openai", {"api_key": other_user})
    openbao.write_secret(f"users/{owner}/openai", {"api_key": mine})
    try:
        for path in ("users/openai", "users/bob/openai", f"users/{owner}/openai"):
            code, body, raw = await broker_api("secrets/get", {"path": path, "key": "api_key"})
            assert code == 403 and body["error"]["type"] == "policy_denied", path
            assert not (shared in raw or other_user in raw or mine in raw)
        note = pysecrets.token_urlsafe(16)
        openbao.write_secret("users/notes", {"text": note})  # a non-key path under the same glob works
        code, body, _ = await broker_api("secrets/get", {"path": "users/notes", "key": "text"})
        assert code == 200 and body == {"value": note}, body
    finally:
        openbao.delete_secret(f"users/{owner}/openai")
