"""The broker's memory per call: RSS every 1,000 streamed calls, in one process, governance on.

A long-running broker (the Hub service, docs/jupyterhub.md "The 10-minute soak") must not grow per call.
This drives `Broker.chat_stream` in process, `--concurrency` calls at a time, against the stand-in
OpenAI-compatible provider (its own process), with the governance governor the server builds (policy,
budgets, audit log) and prints the process's RSS (VmRSS) and its growth per call after each 1,000 calls.
No Jupyter server, no Hub: what grows here grows in the broker itself.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python benchmarks/bench_memory.py [--calls 20000] \
        [--governance full|policy|none] [--budgets postgres|sqlite] [--concurrency 20] [--trim]

`--budgets postgres` starts a throwaway PostgreSQL cluster (Debian's `postgresql`), as the Hub runs;
`--trim` calls glibc's `malloc_trim(0)` after each 1,000 calls and prints the RSS after it (if the RSS
then drops, the growth was free memory the allocator kept, not live memory). Growth over the first
1,000 calls is warm-up (pools, caches); compare the later rows.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MESSAGES = [{"role": "user", "content": "the quick brown fox jumps over the lazy dog"}]


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def governance_governor(kind: str, budgets: str, tmp: Path, model: dict, host: str, cleanup: list):
    """The governor `SecureLLM.build_broker` puts first, built from the same traits."""
    from traitlets.config import Config

    from jupyter_securellm.server.app import SecureLLM
    from jupyter_securellm.server.governance import GovernanceGovernor

    c = Config()
    c.SecureLLM.models = {"gpt": model}
    c.SecureLLM.allowed_hosts = [host]
    if kind == "full":
        c.SecureLLM.budgets = {"default": {"daily_tokens": 10**9}}
        if budgets == "postgres":
            from jupyter_securellm.testing.postgres import PostgresCluster

            cluster = PostgresCluster().start()
            cleanup.append(cluster.stop)
            c.SecureLLM.database_url = cluster.create_database()
        else:
            c.SecureLLM.database_url = f"sqlite:///{tmp}/budgets.sqlite"
        c.SecureLLM.audit_log_path = str(tmp / "audit.log")
    gov = GovernanceGovernor(parent=SecureLLM(config=c))
    cleanup.append(gov.close)
    return gov


async def main_async(args) -> None:
    from jupyter_securellm.detect import Redactor, Scanner, fake_secret
    from jupyter_securellm.server.broker import Broker, Caller
    from jupyter_securellm.server.handlers import _event
    from jupyter_securellm.server.request import ModelConfig
    from jupyter_securellm.testing.openbao import CachedKeyVault, free_port

    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    key = fake_secret("openai-api-key")
    (tmp / "key.txt").write_text(key)
    port = free_port()
    host = f"127.0.0.1:{port}"
    model = {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai", "secret_key": "api_key",
             "api_base": f"http://{host}/v1", "allow_http": True}
    prov = subprocess.Popen([sys.executable, "-m", "jupyter_securellm.testing.provider", "--port", str(port),
                             "--key-file", str(tmp / "key.txt")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    cleanup: list = []
    try:
        governors = [] if args.governance == "none" else [
            governance_governor(args.governance, args.budgets, tmp, model, host, cleanup)]
        broker = Broker(models={"gpt": ModelConfig.from_trait("gpt", model)}, allowed_hosts=[host],
                        vault=CachedKeyVault(key), redactor=Redactor(Scanner()), governors=governors)
        caller = Caller(user="bench")
        body = {"model": "gpt", "messages": MESSAGES, "stream": True}

        async def one():
            async for chunk in await broker.chat_stream(caller, dict(body)):
                _event(chunk)

        async def batch(n):
            sem = asyncio.Semaphore(args.concurrency)

            async def limited():
                async with sem:
                    await one()

            await asyncio.gather(*(limited() for _ in range(n)))
            while broker._drains:  # the provider's end of each stream, read in the background
                await asyncio.gather(*broker._drains, return_exceptions=True)

        for _ in range(100):  # the stand-in provider starting
            try:
                await one()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if prov.poll() is not None:
                    raise RuntimeError("the stand-in provider exited") from None
                await asyncio.sleep(0.1)
        await batch(500)  # warm-up: imports, pools, compiled patterns
        libc = ctypes.CDLL("libc.so.6") if args.trim else None
        r0, t0, load0 = rss_kb(), time.monotonic(), os.getloadavg()[0]
        print(f"broker memory: {args.calls} streamed calls, {args.concurrency} at a time, governance "
              f"{args.governance}{f' (budgets in {args.budgets}, audit log)' if args.governance == 'full' else ''}; "
              f"python {sys.version.split()[0]}; RSS after warm-up {r0 / 1024:.1f} MB; load average {load0:.2f}",
              flush=True)
        prev = r0
        for i in range(1, args.calls // 1000 + 1):
            await batch(1000)
            r = rss_kb()
            line = (f"  {i * 1000:6d} calls  RSS {r / 1024:7.1f} MB  {(r - prev) / 1024:+5.2f} MB in these 1,000 "
                    f"({(r - prev) * 1024 / 1000:5.0f} B/call)  since warm-up {(r - r0) * 1024 / (i * 1000):5.0f} "
                    f"B/call  load {os.getloadavg()[0]:.2f}  {time.monotonic() - t0:.0f} s")
            if libc is not None:
                libc.malloc_trim(0)
                line += f"  after malloc_trim {rss_kb() / 1024:7.1f} MB"
            print(line, flush=True)
            prev = rss_kb()
        await broker.aclose()
    finally:
        for fn in reversed(cleanup):
            fn()
        prov.terminate()
        prov.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--governance", choices=("full", "policy", "none"), default="full")
    ap.add_argument("--budgets", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--trim", action="store_true", help="malloc_trim(0) after each 1,000 calls")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
