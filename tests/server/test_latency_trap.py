"""The latency trap (issue 11): against a provider that writes headers and body in separate segments
without TCP_NODELAY, the broker's pooled client must not wait for a delayed ACK (~40 ms) per call.

Real parts: the Nagle-pattern stand-in (jupyter_securellm.testing.nagle), real OpenBao holding the key,
real litellm through the broker's ProviderClient. Timed at the broker's transport, where the fix is: on a
busy 2-core box litellm's own per-call CPU is as large as the trap. The control, httpx's own transport
against the same stand-in, shows the trap is there, so the assertion can fail.
"""
import asyncio
import json
import statistics
import time

import httpx
import pytest

from jupyter_securellm.detect import Redactor
from jupyter_securellm.server.keys import KeySource
from jupyter_securellm.server.provider import ProviderClient, import_litellm
from jupyter_securellm.server.request import ModelConfig
from jupyter_securellm.server.transport import QuickAckTransport
from jupyter_securellm.testing.nagle import NagleProvider
from jupyter_securellm.vault import VaultClient, VaultSettings

N = 20


async def _timed(nagle, key, transport) -> list:
    """N sequential calls on one pooled client (keep-alive) against the stand-in."""
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
    times = []
    async with httpx.AsyncClient(transport=transport) as c:
        for _ in range(N):
            t = time.perf_counter()
            r = await c.post(nagle.url + "/v1/chat/completions", content=body,
                             headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            assert r.status_code == 200
            times.append((time.perf_counter() - t) * 1000)
    return times


def test_the_brokers_transport_does_not_wait_for_delayed_acks(vault_provider_key):
    """The broker's pooled transport vs httpx's own, same stand-in, interleaved rounds (CPU-light, so a
    busy box does not drown the ~40 ms per call the trap costs)."""
    with NagleProvider(vault_provider_key) as nagle:
        ours, plain = [], []
        for _ in range(3):
            ours += asyncio.run(_timed(nagle, vault_provider_key, QuickAckTransport()))[3:]
            plain += asyncio.run(_timed(nagle, vault_provider_key, httpx.AsyncHTTPTransport()))[3:]
    o, p = statistics.median(ours), statistics.median(plain)
    assert p > 30, f"no delayed-ACK trap on this machine ({p:.1f} ms): the test proves nothing"
    assert o < 15, f"the broker's transport waits {o:.1f} ms per call (httpx's own: {p:.1f} ms)"


def test_the_broker_calls_the_nagle_provider_with_the_vault_key(openbao, server_token_file, vault_provider_key):
    """End to end through the broker's ProviderClient (its pooled client is the quick-ACK one)."""
    import_litellm()

    async def run(nagle):
        vault = VaultClient(VaultSettings(url=openbao.url, token_path=str(server_token_file)))
        keys = KeySource(vault, Redactor())
        client = ProviderClient(keys, [f"127.0.0.1:{nagle.port}"], request_timeout=60, redactor=keys.redactor)
        model = ModelConfig(alias="nagle", model="openai/gpt-4o-mini", secret_path="llm/openai",
                            secret_key="api_key", api_base=nagle.url + "/v1", allow_http=True)
        try:
            for i in range(3):
                resp = await client.call(model, model.api_base, "127.0.0.1", [{"role": "user", "content": f"c{i}"}],
                                         {}, False, "alice")
                assert resp.choices[0].message.content == f"echo: c{i}"
            return type(client._session._transport)
        finally:
            await client.aclose()
            keys.close()
            vault.close()

    with NagleProvider(vault_provider_key) as nagle:
        transport = asyncio.run(run(nagle))
        assert nagle.requests == 3 and nagle.auth_failures == 0
    assert transport is QuickAckTransport
