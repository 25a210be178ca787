"""Real kernels started through the REST API: sanitized env, per-kernel tokens, revocation."""
import json

import pytest

from jupyter_securellm.detect import fake_secret


@pytest.fixture
def leaky_env(monkeypatch):
    """The server process has credentials in its env; none may reach a kernel."""
    values = {"OPENAI_API_KEY": fake_secret("openai-api-key"), "GITHUB_TOKEN": fake_secret("github-token"),
              "AWS_SECRET_ACCESS_KEY": fake_secret("aws-secret-access-key"), "DB_PASSWORD": "pw-" + "x1" * 8,
              "VAULT_TOKEN": "hvs." + "A" * 90, "INNOCENT_LOOKING": fake_secret("anthropic-api-key")}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


async def test_kernel_env_is_sanitized_and_gets_url_and_token(leaky_env, kernels, jp_serverapp, vault_provider_key):
    kid = await kernels.start()
    out = await kernels.run(kid, "import os, json; print(json.dumps(dict(os.environ)))")
    env = json.loads(out)
    for name, value in leaky_env.items():
        assert name not in env
        assert value not in out
    assert vault_provider_key not in out
    assert env["JUPYTER_SECURELLM_URL"] == (
        f"http://127.0.0.1:{jp_serverapp.port}{jp_serverapp.base_url}jupyter-securellm/v1")
    assert len(env["JUPYTER_SECURELLM_KERNEL_TOKEN"]) >= 40
    # the server token of jpserver-*.json is not in the env either
    assert jp_serverapp.identity_provider.token not in out


async def test_kernel_calls_broker_with_its_token(kernels, provider, vault_provider_key, kernel_call):
    kid = await kernels.start()
    code = kernel_call + r'''
s, b = _broker("chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "from kernel"}]})
print(s); print(b)
s, b = _broker("chat/completions", {"model": "gpt", "stream": True, "messages": [{"role": "user", "content": "a b"}]})
print(s); print(b)
'''
    out = await kernels.run(kid, code)
    lines = out.splitlines()
    assert lines[0] == "200", out
    assert json.loads(lines[1])["choices"][0]["message"]["content"] == "echo: from kernel"
    assert lines[2] == "200" and "data: [DONE]" in out
    assert vault_provider_key not in out
    assert [r.auth_ok for r in provider.requests] == [True, True]


async def test_token_revoked_on_restart_and_shutdown(kernels, jp_fetch, broker_api):
    kid = await kernels.start()
    get_tok = "import os; print(os.environ['JUPYTER_SECURELLM_KERNEL_TOKEN'])"
    tok1 = (await kernels.run(kid, get_tok)).strip()
    code, _, _ = await broker_api("models", headers={"X-SecureLLM-Token": tok1}, auth=False)
    assert code == 200

    kernels.forget(kid)
    await jp_fetch("api", "kernels", kid, "restart", method="POST", body="{}")
    tok2 = (await kernels.run(kid, get_tok)).strip()
    assert tok2 and tok2 != tok1
    code, body, _ = await broker_api("models", headers={"X-SecureLLM-Token": tok1}, auth=False)
    assert code == 401 and body["error"]["type"] == "unauthorized"
    code, _, _ = await broker_api("models", headers={"X-SecureLLM-Token": tok2}, auth=False)
    assert code == 200

    await kernels.shutdown(kid)
    code, body, _ = await broker_api("models", headers={"X-SecureLLM-Token": tok2}, auth=False)
    assert code == 401


async def test_tokens_are_per_kernel(kernels, broker_api, jp_serverapp):
    a, b = await kernels.start(), await kernels.start()
    get_tok = "import os; print(os.environ['JUPYTER_SECURELLM_KERNEL_TOKEN'])"
    ta, tb = (await kernels.run(a, get_tok)).strip(), (await kernels.run(b, get_tok)).strip()
    assert ta != tb
    tokens = jp_serverapp.web_app.settings["jupyter_securellm_kernel_tokens"]
    assert tokens.check(ta).kernel_id == a and tokens.check(tb).kernel_id == b
    await kernels.shutdown(a)
    assert tokens.check(ta) is None and tokens.check(tb).kernel_id == b


async def test_kernel_secrets_get_refuses_provider_key(kernels, vault_provider_key, db_password, kernel_call):
    kid = await kernels.start()
    code = kernel_call + r'''
print(_broker("secrets/get", {"path": "llm/openai", "key": "api_key"}))
print(_broker("secrets/get", {"path": "db/analytics", "key": "password"}))
'''
    out = await kernels.run(kid, code)
    assert vault_provider_key not in out
    first, second = out.splitlines()[:2]
    assert first.startswith("(403,") and "policy_denied" in first
    assert second.startswith("(200,") and db_password in second


async def test_auto_restart_after_a_crash_gets_a_fresh_token(kernels, jp_serverapp, broker_api):
    import asyncio

    kid = await kernels.start()
    get_tok = "import os; print(os.environ['JUPYTER_SECURELLM_KERNEL_TOKEN'])"
    tok1 = (await kernels.run(kid, get_tok)).strip()
    tokens = jp_serverapp.web_app.settings["jupyter_securellm_kernel_tokens"]
    km = jp_serverapp.kernel_manager.get_kernel(kid)
    pid = km.provisioner.process.pid
    kernels.forget(kid)
    import os
    import signal

    os.kill(pid, signal.SIGKILL)  # the kernel dies; the restarter starts it again
    for _ in range(100):
        await asyncio.sleep(0.2)
        if tokens.check(tok1) is None and km.provisioner is not None and km.provisioner.process is not None \
                and km.provisioner.process.pid != pid:
            break
    assert tokens.check(tok1) is None
    tok2 = (await kernels.run(kid, get_tok)).strip()
    assert tok2 != tok1 and tokens.check(tok2).kernel_id == kid
    code, _, _ = await broker_api("models", headers={"X-SecureLLM-Token": tok1}, auth=False)
    assert code == 401
