"""Vault slow (every read held > 5 s by `SlowProxy`) while 20 streams run: calls whose key is cached
do not wait for Vault, and the call that needs Vault gets a clear error once the client's 5 s timeout
passes (VaultSettings.timeout), naming Vault and carrying no secret."""
import asyncio
import json
import secrets
import time

import pytest
from tornado.httpclient import AsyncHTTPClient

from jupyter_securellm.testing.leaks import assert_no_secret
from jupyter_securellm.testing.slowproxy import SlowProxy

SLOW = 5.5  # seconds each Vault request is held: longer than the client's 5 s timeout
STREAMS = 20
WORDS = " ".join(f"w{i}" for i in range(30))


@pytest.fixture
def slow_vault(openbao):
    with SlowProxy(openbao.url) as proxy:
        yield proxy


@pytest.fixture
def securellm_config(securellm_config, slow_vault):
    securellm_config["vault_url"] = slow_vault.url
    securellm_config["secret_cache_ttl"] = 300.0
    return securellm_config


@pytest.fixture
def jp_server_config(securellm_server_config):
    return securellm_server_config


@pytest.fixture
def broker_api(jp_serverapp, http_server_client, jp_http_port, jp_base_url, jp_auth_header):
    """Like the shared `broker_api`, through a client with room for every concurrent call (tornado's
    default client queues past 10, which would look like the broker waiting)."""
    client = AsyncHTTPClient(force_instance=True, max_clients=64)

    async def call(path, body, request_timeout=60):
        resp = await client.fetch(f"http://localhost:{jp_http_port}{jp_base_url}jupyter-securellm/v1/{path}",
                                  method="POST", body=json.dumps(body), headers=jp_auth_header,
                                  raise_error=False, request_timeout=request_timeout)
        raw = resp.body.decode()
        return resp.code, (json.loads(raw) if raw.startswith("{") else None), raw

    yield call
    client.close()


async def test_cached_calls_do_not_wait_for_a_slow_vault(broker_api, slow_vault, provider, vault_provider_key,
                                                         openbao, unique_path, server_log):
    async def timed(coro):
        t0 = time.monotonic()
        result = await coro
        return time.monotonic() - t0, result

    async def finished_at(coro):
        result = await coro
        return time.monotonic(), result

    def chat(stream=False):
        return broker_api("chat/completions", {"model": "gpt", "stream": stream,
                                               "messages": [{"role": "user", "content": WORDS}]},
                          request_timeout=120)

    assert (await chat())[0] == 200  # warms the key cache (and litellm) while Vault is still fast
    provider.chunk_delay = 0.01  # each stream lasts a few tenths of a second
    slow_vault.delay = SLOW
    path, value = f"db/{unique_path}", secrets.token_urlsafe(18)
    openbao.write_secret(path, {"password": value})  # written after the server started: not cached
    t_start = time.monotonic()
    needs_vault = asyncio.ensure_future(timed(broker_api("secrets/get", {"path": path, "key": "password"},
                                                         request_timeout=60)))
    while slow_vault.in_flight == 0:  # the uncached read is now held in the proxy
        assert time.monotonic() - t_start < 10, "the secret read never reached Vault"
        await asyncio.sleep(0.01)
    streams = [asyncio.ensure_future(finished_at(chat(stream=True))) for _ in range(STREAMS)]
    cached = [await timed(chat()) for _ in range(3)]
    stream_results = await asyncio.gather(*streams)
    slow_elapsed, (code, body, raw) = await needs_vault

    for elapsed, (c, _, r) in cached:
        assert c == 200, r
        assert elapsed < 2.5, f"a cached call took {elapsed:.2f} s behind a {SLOW} s Vault"
    for _, (c, _, r) in stream_results:
        assert c == 200 and "data: [DONE]" in r, r
    last_stream = max(t for t, _ in stream_results) - t_start
    assert last_stream < slow_elapsed - 1, "the streams waited for the Vault read"
    assert code == 503 and body["error"]["type"] == "vault_unavailable", raw
    assert "Vault" in body["error"]["message"] and "Traceback" not in raw
    assert slow_elapsed >= 4.5  # the read really waited on Vault
    assert slow_vault.held >= 1
    for secret in (vault_provider_key, value):
        assert_no_secret(raw + server_log(), secret, "the error or the server log")
    print(f"\nslow Vault ({SLOW} s/read), {STREAMS} streams: all streams done after {last_stream:.2f} s, "
          f"worst cached call {max(e for e, _ in cached):.2f} s, the uncached read failed after {slow_elapsed:.2f} s")
