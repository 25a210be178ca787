"""The Vault layer with its neighbours: the engine's Redactor (on_secret) and OpenBao's audit device."""
import json

from jupyter_securellm.vault import VaultClient, VaultSettings


def test_on_secret_feeds_the_redactor(openbao, kv, write_file):
    from jupyter_securellm.detect import Redactor

    redactor = Redactor()
    token = openbao.create_token([kv["policy"]], ttl="1h")["client_token"]
    vc = VaultClient(VaultSettings(url=openbao.url, token_path=write_file("t", token)),
                     on_secret=redactor.add_secret)
    value = vc.read_secret(f"{kv['prefix']}/{{user}}/openai", "api_key", user="alice")
    out = redactor.redact(f"model said: {value} and the token is {token}")
    assert value not in out and token not in out and "[REDACTED:" in out


def test_audit_stanza_logs_the_read_with_values_hmaced(openbao_factory, tmp_path, write_file):
    audit = tmp_path / "audit.log"
    bao = openbao_factory(audit_log=audit)
    bao.write_secret("llm/openai", {"api_key": "audit-probe-value-0123456789"})  # securellm: allow
    bao.read_policy("reader", ["llm/*"])
    token = bao.create_token(["reader"], ttl="1h")["client_token"]
    vc = VaultClient(VaultSettings(url=bao.url, token_path=write_file("t", token)))
    assert vc.read_secret("llm/openai", "api_key") == "audit-probe-value-0123456789"
    text = audit.read_text()
    reads = [json.loads(line) for line in text.splitlines()
             if '"secret/data/llm/openai"' in line and '"type":"response"' in line]
    assert reads and reads[-1]["auth"]["policies"] == ["default", "reader"]
    assert "audit-probe-value-0123456789" not in text and token not in text
