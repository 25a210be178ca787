"""Direct mode (no Jupyter server): the kernel reads Vault itself (token from a file) and passes
`api_key=` to litellm, never through os.environ. Trust tier 1 only (documented in docs/kernel.md).
Real OpenBao dev server and the stand-in provider, which accepts only the key stored in OpenBao."""
from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def vault_and_provider(tmp_path):
    from jupyter_securellm.demo import DemoStack

    stack = DemoStack(tmp_path / "stack")
    stack.start_openbao()
    stack.start_provider()
    yield stack
    stack.stop()


def test_direct_mode_calls_the_provider_with_the_key_from_vault(shell, capsys, tmp_path, vault_and_provider,
                                                                  assert_absent):
    import hvac

    stack = vault_and_provider
    login = hvac.Client(url=stack.bao_url).auth.approle.login(
        role_id=stack.role_id, secret_id=open(stack.secret_id_path).read())
    token_file = tmp_path / "vault-token"
    token_file.write_text(login["auth"]["client_token"])
    shell.run_line_magic("load_ext", "jupyter_securellm")
    shell.run_cell(f"""%config SecureLLMMagics.mode = 'direct'
%config SecureLLMMagics.vault_url = {stack.bao_url!r}
%config SecureLLMMagics.vault_token_path = {str(token_file)!r}
%config SecureLLMMagics.models = {{'demo': {{'model': 'openai/gpt-4o-mini', 'secret_path': 'llm/openai', 'secret_key': 'api_key', 'api_base': {stack.provider.url + '/v1'!r}}}}}
""")
    env_before = dict(os.environ)
    res = shell.run_cell("%%llm -m demo -o answer\nhello direct mode")
    assert res.success
    out, err = capsys.readouterr()
    assert "echo: hello direct mode" in out and shell.user_ns["answer"] == "echo: hello direct mode"
    assert stack.provider.requests and stack.provider.requests[-1].auth_ok  # exactly the key from OpenBao
    added = {k for k in os.environ if k not in env_before}
    assert added <= {"TIKTOKEN_CACHE_DIR"}, added  # litellm's own cache dir; the key never went through env
    assert stack.provider_key not in os.environ.values()
    shell.run_cell("from jupyter_securellm import secrets\npw = secrets.get('db/warehouse', 'password')\nprint(pw, pw.reveal())")
    out2, _ = capsys.readouterr()
    assert shell.user_ns["pw"] == stack.db_password and "[REDACTED:known-secret]" in out2
    shell.run_line_magic("llm", "status")
    status = capsys.readouterr().out
    assert "direct mode" in status and "reachable" in status
    for value in (stack.provider_key, stack.db_password):
        assert_absent(out + err + out2 + status, value)

    token_file.unlink()
    res = shell.run_cell("%%llm -m demo\nagain")
    out, err = capsys.readouterr()
    assert not res.success and "cannot read the Vault token file" in out + err and "Traceback" not in out + err
