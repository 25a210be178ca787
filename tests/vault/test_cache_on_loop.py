"""Hot path (issue 11): a cached key is served on the event loop itself, without a worker-thread hop;
a miss, a forced re-read and an expired entry still go to the broker's thread pool (hvac is blocking).
Real OpenBao; the thread pool is the broker's own (KeySource.executor), its submissions counted."""
import asyncio

from jupyter_securellm.detect import Redactor
from jupyter_securellm.server.keys import KeySource
from jupyter_securellm.vault import VaultClient, VaultSettings


def test_a_cache_hit_never_leaves_the_event_loop(openbao, kv, write_file):
    token = openbao.create_token([kv["policy"]], ttl="1h")["client_token"]
    vault = VaultClient(VaultSettings(url=openbao.url, token_path=write_file("t", token), secret_cache_ttl=60))
    keys = KeySource(vault, Redactor())
    hops = []
    submit = keys.executor.submit
    keys.executor.submit = lambda fn, *a, **kw: (hops.append(fn), submit(fn, *a, **kw))[1]
    path = f"{kv['prefix']}/openai"

    async def run():
        first = await keys.read(path, "api_key", "bob", what="k")
        n = len(hops)
        again = [await keys.read(path, "api_key", "bob", what="k") for _ in range(20)]
        hits = len(hops) - n
        fresh = await keys.read(path, "api_key", "bob", what="k", fresh=True)
        return first, again, hits, n, fresh

    try:
        first, again, hits, misses, fresh = asyncio.run(run())
        assert first == kv["shared"] and again == [first] * 20 and fresh == first
        assert misses >= 1, "the first read must go to a worker thread (hvac blocks)"
        assert hits == 0, f"{hits} worker-thread hops for 20 cache hits"
        assert vault.stats["cache_hits"] >= 20
        assert len(hops) > misses  # the forced re-read went to the pool again
    finally:
        keys.close()
        vault.close()
