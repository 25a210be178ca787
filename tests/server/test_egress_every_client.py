"""Tier 2 (key exfiltration by a provider endpoint): a 307 to another host is refused for EVERY client
litellm may use, not only its OpenAI one. The guard sits under all of them (httpx and aiohttp request
entry points, scoped to the provider call); the other host receives nothing, neither key nor prompt.

Each wire format's own client: OpenAI SDK (openai/), litellm's AsyncHTTPHandler (anthropic/,
gemini/; it follows redirects by default and by hand), aiohttp (aiohttp_openai/).
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

MODELS = {
    "r-openai": "openai/gpt-4o-mini",
    "r-anthropic": "anthropic/claude-3-5-sonnet-latest",
    "r-gemini": "gemini/gemini-1.5-flash",
    "r-aiohttp": "aiohttp_openai/gpt-4o-mini",
}


@pytest.fixture(autouse=True)
def fresh_aiohttp_session():
    """litellm keeps one aiohttp session for aiohttp_openai/ per process, bound to the first event loop;
    a server has one loop, but each test here has its own: give each test a fresh handler."""
    import litellm.main
    from litellm.llms.custom_httpx.aiohttp_handler import BaseLLMAIOHTTPHandler

    litellm.main.base_llm_aiohttp_handler = BaseLLMAIOHTTPHandler()
    yield


@pytest.fixture
def redirector(other_host):
    seen = []

    class H(BaseHTTPRequestHandler):
        def _redirect(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            seen.append(self.path)
            self.send_response(307)
            self.send_header("Location", other_host.url + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET = _redirect

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.seen = seen
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def securellm_config(securellm_config, redirector, other_host):
    port = redirector.server_address[1]
    for alias, model in MODELS.items():
        base = f"http://127.0.0.1:{port}" + ("/v1" if "openai" in model else "")
        securellm_config["models"][alias] = {"model": model, "secret_path": "llm/openai", "secret_key": "api_key",
                                             "api_base": base, "allow_http": True}
    securellm_config["allowed_hosts"].append(f"127.0.0.1:{port}")
    # the other host is even allowlisted: a redirect must still not reach it (it is not this call's endpoint)
    securellm_config["allowed_hosts"].append(f"127.0.0.1:{other_host.port}")
    return securellm_config


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("alias", sorted(MODELS))
async def test_redirect_to_another_host_is_refused_for_every_client(broker_api, other_host, redirector, provider,
                                                                    vault_provider_key, server_log, alias, stream):
    code, body, raw = await broker_api("chat/completions", {
        "model": alias, "stream": stream, "messages": [{"role": "user", "content": "confidential prompt"}]})
    assert redirector.seen, "the endpoint was never called: the test proves nothing"
    assert other_host.requests == [], f"{alias}: the other host received a request"
    if code == 200:  # a client that connects only when the stream is first read (gemini): an error event
        events = [json.loads(e[len("data: "):]) for e in raw.split("\n\n") if e.startswith("data: {")]
        assert stream and "[DONE]" not in raw, raw[:300]
        assert [e["error"]["type"] for e in events if "error" in e] == ["egress_denied"], raw[:300]
    else:
        assert code in (403, 502), raw
        assert body["error"]["type"] in ("egress_denied", "provider_error"), body
    assert vault_provider_key not in raw and vault_provider_key not in server_log()
    # the regular model still works on the same server
    code, _, _ = await broker_api("chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "x"}]})
    assert code == 200 and provider.requests[-1].auth_ok
