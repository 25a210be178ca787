"""The broker's own CPU per streaming call, in one process: direct litellm vs Broker.chat_stream.

A profiling harness for the streaming hot path (docs/broker.md): no Jupyter server, no HTTP hop to
the broker, so what is left between the two paths is the broker's own work (validation, governors,
DLP, egress guard, key cache, per-chunk redaction, SSE framing). Both paths talk to the stand-in
OpenAI-compatible provider (its own process) through the broker's provider client
(`server/transport.py` `pooled_client`), and they are interleaved call by call.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python benchmarks/bench_stream_hot.py [--n 400] [--profile FILE]

`--profile FILE` runs the broker path under cProfile (the direct path is not profiled) and prints the
top entries by own time; the CPU figures of a profiled run are inflated.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from jupyter_securellm.detect import Redactor, Scanner, fake_secret  # noqa: E402
from jupyter_securellm.testing.openbao import free_port  # noqa: E402

MESSAGES = [{"role": "user", "content": "the quick brown fox jumps over the lazy dog"}]


class _KeyOnly:
    """The one secret the harness needs, as a cached Vault read (the broker's hot path: a cache hit)."""

    def __init__(self, key):
        self.key = key

    def cached(self, path, key, user=None):
        return self.key

    def read_secret(self, path, key, user=None):
        return self.key


async def main_async(args):
    import litellm

    from jupyter_securellm.server.broker import Broker, Caller
    from jupyter_securellm.server.handlers import _event
    from jupyter_securellm.server.request import ModelConfig
    from jupyter_securellm.server.transport import pooled_client

    tmp = Path(tempfile.mkdtemp(prefix="bench-stream-hot-"))
    key = fake_secret("openai-api-key")
    (tmp / "key.txt").write_text(key)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    prov = subprocess.Popen([sys.executable, "-m", "jupyter_securellm.testing.provider", "--port", str(port),
                             "--key-file", str(tmp / "key.txt")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        litellm.suppress_debug_info = True
        models = {"gpt": ModelConfig.from_trait("gpt", {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai",
                                                         "secret_key": "api_key", "api_base": url + "/v1",
                                                         "allow_http": True})}
        broker = Broker(models=models, allowed_hosts=[f"127.0.0.1:{port}"], vault=_KeyOnly(key),
                        redactor=Redactor(Scanner()))
        caller = Caller(user="bench")
        body = {"model": "gpt", "messages": MESSAGES, "stream": True}

        async def via_broker():
            n = 0
            async for chunk in await broker.chat_stream(caller, dict(body)):
                n += len(_event(chunk))
            return n

        direct_client = pooled_client(timeout=60)

        async def direct():
            litellm.aclient_session = direct_client
            resp = await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES, api_key=key,
                                             api_base=url + "/v1", stream=True, max_retries=0)
            n = 0
            async for _ in resp:
                n += 1
            return n

        for _ in range(100):
            if prov.poll() is not None:
                raise RuntimeError("the stand-in provider exited")
            try:
                await direct()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                await asyncio.sleep(0.1)
        for _ in range(30):  # warm-up: imports, clients, regex compilation
            await direct()
            await via_broker()

        prof = None
        if args.profile:
            import cProfile

            prof = cProfile.Profile()
        cpu = {"direct": [], "broker": []}
        wall = {"direct": [], "broker": []}
        load0 = os.getloadavg()
        for _ in range(args.n):
            for name, fn in (("direct", direct), ("broker", via_broker)):
                c0, t0 = time.process_time(), time.perf_counter()
                if prof is not None and name == "broker":
                    prof.enable()
                await fn()
                if prof is not None and name == "broker":
                    prof.disable()
                cpu[name].append(time.process_time() - c0)
                wall[name].append(time.perf_counter() - t0)
        load1 = os.getloadavg()
        print(f"stream hot path, in process: n={args.n} streams per path, interleaved; python "
              f"{sys.version.split()[0]}; load average {load0[0]:.2f} -> {load1[0]:.2f}")
        for name in ("direct", "broker"):
            c, w = cpu[name], wall[name]
            print(f"  {name:<7} CPU per stream median {statistics.median(c) * 1e3:6.3f} ms, mean "
                  f"{statistics.fmean(c) * 1e3:6.3f} ms | wall median {statistics.median(w) * 1e3:6.3f} ms")
        added = statistics.median(cpu["broker"]) - statistics.median(cpu["direct"])
        print(f"  broker's own CPU per stream (median difference): {added * 1e3:+.3f} ms")
        if prof is not None:
            import pstats

            prof.dump_stats(args.profile)
            st = pstats.Stats(args.profile)
            st.sort_stats("tottime").print_stats(args.top)
            st.sort_stats("cumulative").print_stats(r"jupyter_securellm", args.top)
        await broker.aclose()
        await direct_client.aclose()
    finally:
        prov.terminate()
        prov.wait(timeout=10)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--profile", metavar="FILE", help="cProfile the broker path, stats to FILE")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args(argv)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
