"""Egress allowlist (tier 2: a caller must not be able to send the key to a host of its choice)."""
import pytest

from jupyter_securellm.server.egress import endpoint_for as _endpoint_for, host_allowed, provider_of, split_host
from jupyter_securellm.server.errors import BrokerError
from jupyter_securellm.server.request import ModelConfig

ALLOWED = ["127.0.0.1:8001", "api.openai.com", "*.example.org"]


def cfg(**kw):
    base = {"alias": "m", "model": "openai/gpt-4o-mini", "secret_path": "llm/openai", "secret_key": "api_key"}
    base.update(kw)
    return ModelConfig(**base)


def endpoint_for(model, request_api_base=None):
    return _endpoint_for(model, ALLOWED, request_api_base)


@pytest.mark.parametrize("host,port,ok", [
    ("api.openai.com", None, True), ("API.OpenAI.com", 443, True), ("127.0.0.1", 8001, True),
    ("127.0.0.1", 8002, False), ("llm.example.org", None, True), ("example.org", None, False),
    ("api.openai.com.evil.net", None, False), ("evil.net", None, False),
])
def test_host_allowed(host, port, ok):
    assert host_allowed(host, port, ALLOWED) is ok


def test_configured_api_base_must_be_allowlisted():
    assert endpoint_for(cfg(api_base="http://127.0.0.1:8001/v1", allow_http=True)) == ("http://127.0.0.1:8001/v1", "127.0.0.1")
    with pytest.raises(BrokerError) as ei:
        endpoint_for(cfg(api_base="http://127.0.0.1:9999/v1", allow_http=True))
    assert ei.value.type == "egress_denied" and ei.value.status == 403
    assert "allowed_hosts" in ei.value.message


def test_request_cannot_move_api_base_even_to_an_allowlisted_host():
    c = cfg(api_base="http://127.0.0.1:8001/v1", allow_http=True)
    for other in ("http://127.0.0.1:9999/v1", "https://api.openai.com/v1", "http://evil.net/v1"):
        with pytest.raises(BrokerError) as ei:
            endpoint_for(c, other)
        assert ei.value.type == "egress_denied"
    # the same host is fine (e.g. a client that always sends the base it was told)
    assert endpoint_for(c, "http://127.0.0.1:8001/v1")[1] == "127.0.0.1"


def test_default_provider_host_and_unknown_provider():
    assert endpoint_for(cfg()) == ("", "api.openai.com")
    with pytest.raises(BrokerError) as ei:
        endpoint_for(cfg(model="somecloud/model-x"))
    assert ei.value.type == "egress_denied" and "api_base" in ei.value.message


def test_url_parsing_refuses_credentials_and_odd_schemes():
    with pytest.raises(ValueError):
        split_host("http://user:pw@127.0.0.1:8001/v1")
    with pytest.raises(ValueError):
        split_host("file:///etc/passwd")
    with pytest.raises(BrokerError) as ei:
        endpoint_for(cfg(api_base="http://127.0.0.1:8001/v1", allow_http=True), "ftp://127.0.0.1:8001/")
    assert ei.value.type == "invalid_request"
    assert provider_of("claude-3-5-sonnet") == "anthropic" and provider_of("gpt-4o") == "openai"


def test_plain_http_needs_an_explicit_opt_in():
    """Tier 2 port squatting: a plain-http (e.g. loopback) endpoint is trusted by host:port alone, so a
    process that binds the port while the model server is down would get the key. Refused by default."""
    with pytest.raises(BrokerError) as ei:
        endpoint_for(cfg(api_base="http://127.0.0.1:8001/v1"))
    assert ei.value.type == "egress_denied" and "allow_http" in ei.value.message
    assert endpoint_for(cfg(api_base="https://llm.example.org/v1"))[1] == "llm.example.org"


def test_request_cannot_downgrade_https_to_http():
    for configured in ("https://llm.example.org/v1", None):
        c = cfg(api_base=configured) if configured else cfg()
        host = "llm.example.org" if configured else "api.openai.com"
        with pytest.raises(BrokerError) as ei:
            endpoint_for(c, f"http://{host}/v1")
        assert ei.value.type == "egress_denied", configured
