"""An allowlisted endpoint that redirects elsewhere: the broker does not follow, so the other host
(not allowlisted) receives nothing: neither the key nor the prompt."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture
def redirector(other_host):
    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(307)
            self.send_header("Location", other_host.url + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def securellm_config(securellm_config, redirector):
    securellm_config["models"]["redir"] = {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai",
                                           "secret_key": "api_key", "api_base": f"http://127.0.0.1:{redirector}/v1",
                                           "allow_http": True}
    securellm_config["allowed_hosts"].append(f"127.0.0.1:{redirector}")
    return securellm_config


@pytest.mark.parametrize("stream", [False, True])
async def test_redirect_to_other_host_is_not_followed(broker_api, other_host, provider, stream):
    code, body, _ = await broker_api("chat/completions", {
        "model": "redir", "stream": stream, "messages": [{"role": "user", "content": "confidential prompt"}]})
    assert code == 502 and body["error"]["type"] == "provider_error" and "redirect" in body["error"]["message"]
    assert other_host.requests == []
    # the regular model still works on the same server (the guard does not block allowlisted hosts)
    code, _, _ = await broker_api("chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "x"}]})
    assert code == 200 and provider.requests[-1].auth_ok
