"""The broker's own CPU per streaming call, in one process: direct litellm vs Broker.chat_stream.

A profiling harness for the streaming hot path (docs/broker.md): no Jupyter server, no HTTP hop to
the broker, so what is left between the two paths is the broker's own work (validation, governors,
DLP, egress guard, key cache, per-chunk redaction, SSE framing). Both paths talk to the stand-in
OpenAI-compatible provider (its own process) through the broker's provider client
(`server/transport.py` `pooled_client`), and they are interleaved call by call.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python benchmarks/bench_stream_hot.py [--n 400] [--profile FILE]

`--profile FILE` runs the broker path under cProfile (the direct path is not profiled) and prints the
top entries by own time; the CPU figures of a profiled run are inflated.

`--breakdown FILE` reads the server profile that `bench_broker.py --only stream --profile-server FILE`
wrote and prints, per request, where the server's time goes (cProfile inflates it about twofold):

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python benchmarks/bench_broker.py --n 300 --only stream \
        --profile-server /tmp/server.prof
    .venv/bin/python benchmarks/bench_stream_hot.py --breakdown /tmp/server.prof
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
from jupyter_securellm.testing.openbao import CachedKeyVault, free_port  # noqa: E402
from jupyter_securellm.testing.provider import ReplayedStream  # noqa: E402

MESSAGES = [{"role": "user", "content": "the quick brown fox jumps over the lazy dog"}]


async def main_async(args):
    import litellm

    from jupyter_securellm.server.broker import Broker, Caller
    from jupyter_securellm.server.handlers import _event
    from jupyter_securellm.server.request import ModelConfig
    from jupyter_securellm.server.streaming import AnswerRedactor
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
        broker = Broker(models=models, allowed_hosts=[f"127.0.0.1:{port}"], vault=CachedKeyVault(key),
                        redactor=Redactor(Scanner()))
        caller = Caller(user="bench")
        body = {"model": "gpt", "messages": MESSAGES, "stream": True}

        async def via_broker():
            n = 0
            async for chunk in await broker.chat_stream(caller, dict(body)):
                n += len(_event(chunk))
            # the stream ends at finish_reason; the provider's end is read in the background: count it here
            while broker._drains:
                await asyncio.gather(*broker._drains, return_exceptions=True)
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
        # the per-chunk part alone: redaction + SSE framing over one stream's chunks, collected beforehand
        litellm.aclient_session = direct_client
        resp = await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES, api_key=key,
                                         api_base=url + "/v1", stream=True, max_retries=0)
        collected = [c async for c in resp]
        answers = AnswerRedactor(broker.redactor)

        async def per_chunk():
            n = 0
            async for d in answers.stream(ReplayedStream(collected), "gpt", 60):
                n += len(_event(d))
            return n

        for _ in range(200):
            await per_chunk()
        best = []
        for _ in range(5):
            c0 = time.process_time()
            for _ in range(300):
                await per_chunk()
            best.append((time.process_time() - c0) / 300)
        print(f"  of which per chunk (AnswerRedactor.stream + SSE framing over {len(collected)} pre-collected "
              f"chunks): {min(best) * 1e3:.3f} ms per stream (best of 5 x 300)")
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


#: (label, file part, function name) of the server's steps, outermost first
BREAKDOWN = (
    ("tornado request handling, whole (web.py _execute)", "tornado/web.py", "_execute"),
    ("  our handler (broker_auth wrapper)", "server/handlers.py", "wrapper"),
    ("    provider call + chunk reads, litellm (provider.within)", "server/provider.py", "within"),
    ("      of which the call (ProviderClient.call)", "server/provider.py", "call"),
    ("    answer redaction incl. chunk reads (AnswerRedactor.stream)", "server/streaming.py", "stream"),
    ("      StreamRedactor.feed", "detect/redact.py", "feed"),
    ("    SSE framing (_event)", "server/handlers.py", "_event"),
    ("    SSE writes (_SSEWriter._flush)", "server/handlers.py", "_flush"),
    ("    request validation (ChatRequest.from_body, jsonschema)", "server/request.py", "from_body"),
    ("    prompt DLP (PromptDLP.check)", "server/dlp.py", "check"),
    ("    governance authorize (Rego policy)", "server/governance.py", "authorize"),
    ("    governance reserve", "server/governance.py", "reserve"),
    ("    settle + record (Broker._finish)", "server/broker.py", "_finish"),
    ("    kernel-token peer check (_peer_is_us)", "server/handlers.py", "_peer_is_us"),
    ("    notebook path lookup (_notebook_path)", "server/handlers.py", "_notebook_path"),
    ("  jupyter_server prepare()", "jupyter_server/base/handlers.py", "prepare"),
    ("  finish() (last events + chunked terminator)", "tornado/web.py", "finish"),
    ("  access log (log_request)", "tornado/web.py", "log_request"),
    ("HTTP/1 request parsing (_read_message)", "tornado/http1connection.py", "_read_message"),
    ("socket send(), all (provider and client)", "~", "<method 'send' of '_socket.socket' objects>"),
)


def breakdown(path: str) -> None:
    """Per request: cumulative profiled ms of each server step (requests = calls of ChatRequest.from_body)."""
    import pstats

    stats = pstats.Stats(path).stats

    def cum(part, fn):
        t = n = 0
        for (f, _line, name), v in stats.items():
            if part in f and name == fn:
                t, n = t + v[3], n + v[1]
        return t, n

    requests = cum("server/request.py", "from_body")[1] or 1
    print(f"server profile {path}: {requests} chat requests; cumulative ms per request (cProfile-inflated), "
          "calls per request")
    for label, part, fn in BREAKDOWN:
        t, n = cum(part, fn)
        print(f"  {t / requests * 1e3:7.3f} ms {n / requests:5.1f}x  {label}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--profile", metavar="FILE", help="cProfile the broker path, stats to FILE")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--breakdown", metavar="FILE", help="print the per-request breakdown of a server profile")
    args = ap.parse_args(argv)
    if args.breakdown:
        return breakdown(args.breakdown)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
