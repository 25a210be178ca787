"""Broker overhead: the same completion direct from litellm in-process vs through the broker.

Real parts: an OpenBao server holding the key, the stand-in OpenAI-compatible provider in its
own process, a real `jupyter server` with the SecureLLM extension in its own process, and a real
kernel whose capability token the benchmark client uses (so the measured path is exactly a
kernel's: HTTP + token check + policy hook + DLP + egress + Vault cache + litellm + redaction).
The broker side is called with the kernel's own client (`kernel/client.py` BrokerClient: http.client,
one connection per call, as `%%llm` does), timed in its worker thread; `--client httpx` uses a pooled
httpx client instead (what earlier figures used: it parses the events with ~2 ms more CPU per stream).

Streams end for the caller at finish_reason (the broker settles, records and ends the stream there,
and reads the provider's own end in the background), while litellm's `async for` ends only after its
end-of-stream work; each streaming row therefore also prints direct litellm's time to its
finish_reason chunk, the strictest comparison.

Like for like: direct litellm uses the broker's own provider client (`server/transport.py`
`pooled_client`: the quick-ACK transport, no redirects) as its `litellm.aclient_session`, so the two
paths differ only by the broker hop. (With litellm's default pooled client the direct path meets the
delayed-ACK trap against the stand-ins, which write headers and body in separate segments, and the
broker would look faster than direct litellm; the last line measures that default client for
reference.)

Reports median and p99 latency (ms) and the broker's added latency for
  1. single non-streaming calls (sequential),
  2. single streaming calls (sequential; time to the last chunk),
  3. N concurrent streaming calls (rounds of N, default 10; time to the last chunk of each), with errors,
  4. single calls to a "trap" provider (testing/nagle.py: headers and body in separate segments, no
     TCP_NODELAY), which cost a delayed ACK (~40 ms) per call on a pooled client without quick ACKs,
and the load average before and after (the figures are only as quiet as the machine). The two paths
are interleaved call by call (round by round when concurrent), so load that comes and goes during a row
hits both alike.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python benchmarks/bench_broker.py [--n 200] [--concurrency 10] [--rounds 10]
        [--only single stream concurrent trap trap-stream reference] [--client kernel|httpx]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from jupyter_securellm.detect import fake_secret  # noqa: E402
from jupyter_securellm.testing.openbao import OpenBao, free_port  # noqa: E402

MESSAGES = [{"role": "user", "content": "the quick brown fox jumps over the lazy dog"}]


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def wait_http(url, headers=None, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.read()
        except Exception:
            time.sleep(0.2)
    raise TimeoutError(url)


class Setup:
    def __init__(self, tmp: Path, profile_server: str | None = None):
        self.tmp = tmp
        self.procs = []
        self.bao = OpenBao(tmp / "bao").start()
        self.bao.enable_kv("secret")
        self.bao.read_policy("bench", ["llm/*"])
        self.key = fake_secret("openai-api-key")
        self.bao.write_secret("llm/openai", {"api_key": self.key})
        (tmp / "key.txt").write_text(self.key)
        vault_token = self.bao.create_token(["bench"], ttl="2h")["client_token"]
        (tmp / "vault-token").write_text(vault_token)

        self.provider_port = free_port()
        self.provider_url = f"http://127.0.0.1:{self.provider_port}"
        self._spawn([sys.executable, "-m", "jupyter_securellm.testing.provider", "--port", str(self.provider_port),
                     "--key-file", str(tmp / "key.txt")], "provider.log")
        # the latency trap: headers and body in separate segments, no TCP_NODELAY (testing/nagle.py)
        self.nagle_port = free_port()
        self.nagle_url = f"http://127.0.0.1:{self.nagle_port}"
        self._spawn([sys.executable, "-m", "jupyter_securellm.testing.nagle", "--port", str(self.nagle_port),
                     "--key-file", str(tmp / "key.txt")], "nagle.log")
        time.sleep(0.5)

        self.port = free_port()
        self.jtoken = secrets.token_hex(16)
        for d in ("runtime", "root", "config"):
            (tmp / d).mkdir()
        cfg = {
            "ServerApp": {"jpserver_extensions": {"jupyter_securellm": True}, "allow_unauthenticated_access": False,
                          "open_browser": False, "ip": "127.0.0.1", "port": self.port, "port_retries": 0,
                          "root_dir": str(tmp / "root"), "log_level": "WARN"},
            "IdentityProvider": {"token": self.jtoken},
            "SecureLLM": {"vault_url": self.bao.url, "vault_token_path": str(tmp / "vault-token"),
                          "models": {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai",
                                             "secret_key": "api_key", "api_base": self.provider_url + "/v1",
                                             "allow_http": True},
                                     "nagle": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai",
                                               "secret_key": "api_key", "api_base": self.nagle_url + "/v1",
                                               "allow_http": True}},
                          "allowed_hosts": [f"127.0.0.1:{self.provider_port}", f"127.0.0.1:{self.nagle_port}"]},
        }
        (tmp / "config" / "jupyter_server_config.json").write_text(json.dumps(cfg))
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
                   JUPYTER_DATA_DIR=str(tmp / "data"))
        prof = ["-m", "cProfile", "-o", profile_server] if profile_server else []
        self._spawn([sys.executable, *prof, "-m", "jupyter_server", "--allow-root"], "server.log", env=env)
        self.server_pid = self.procs[-1].pid
        auth = {"Authorization": f"token {self.jtoken}"}
        wait_http(f"http://127.0.0.1:{self.port}/api/status", auth)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/kernels", method="POST",
                                     data=b'{"name": "python3"}', headers=auth)
        with urllib.request.urlopen(req, timeout=60) as r:
            kid = json.loads(r.read())["id"]
        self.broker_url, self.kernel_token = self._kernel_env(kid)

    def _spawn(self, cmd, log, env=None):
        f = open(self.tmp / log, "wb")
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
        self.procs.append(p)

    def _kernel_env(self, kid):
        from jupyter_client import BlockingKernelClient

        kc = BlockingKernelClient(connection_file=str(self.tmp / "runtime" / f"kernel-{kid}.json"))
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        out = []
        kc.execute_interactive(
            "import os, json; print(json.dumps([os.environ['JUPYTER_SECURELLM_URL'], "
            "os.environ['JUPYTER_SECURELLM_KERNEL_TOKEN']]))",
            output_hook=lambda m: out.append(m["content"].get("text", "")), timeout=60)
        kc.stop_channels()
        return json.loads("".join(out))

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.bao.close()


def use_client(litellm, client) -> None:
    """Make `client` litellm's pooled client (None: litellm's default), dropping OpenAI clients cached around the last."""
    litellm.aclient_session = client
    litellm.in_memory_llm_clients_cache.flush_cache()


#: direct litellm's time to its finish_reason chunk, per streaming call of the current row
TO_FINISH: list = []


async def direct_call(litellm, s: Setup, stream: bool, trap: bool = False) -> float:
    t0 = time.perf_counter()
    resp = await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES, api_key=s.key,
                                     api_base=(s.nagle_url if trap else s.provider_url) + "/v1", stream=stream,
                                     max_retries=0)
    if stream:
        finished = None
        async for chunk in resp:
            if finished is None and chunk.choices and chunk.choices[0].finish_reason:
                finished = time.perf_counter() - t0
        TO_FINISH.append(finished)
    return time.perf_counter() - t0


def kernel_call(kc, stream: bool, trap: bool = False) -> float:
    """One call with the kernel's own client (blocking; run in a worker thread), timed there."""
    body = {"model": "nagle" if trap else "gpt", "messages": MESSAGES}
    t0 = time.perf_counter()
    if stream:
        for _ in kc.stream(body):  # raises SecureLLMError on an error event; ends at [DONE]
            pass
    else:
        kc.complete(body)
    return time.perf_counter() - t0


async def broker_call(client, s: Setup, stream: bool, trap: bool = False) -> float:
    body = {"model": "nagle" if trap else "gpt", "messages": MESSAGES, "stream": stream}
    headers = {"X-SecureLLM-Token": s.kernel_token}
    t0 = time.perf_counter()
    if stream:
        async with client.stream("POST", s.broker_url + "/chat/completions", json=body, headers=headers) as r:
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}")
            done = False
            async for line in r.aiter_lines():
                if line.startswith("data: {\"error\""):
                    raise RuntimeError(line[:200])
                if line == "data: [DONE]":
                    done = True
            if not done:
                raise RuntimeError("stream ended without [DONE]")
    else:
        r = await client.post(s.broker_url + "/chat/completions", json=body, headers=headers)
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}")
        r.json()
    return time.perf_counter() - t0


async def measure(fn, n, concurrency=1):
    """n samples; with concurrency > 1, rounds of `concurrency` calls started together."""
    samples, errors = [], 0
    if concurrency == 1:
        for _ in range(n):
            try:
                samples.append(await fn())
            except Exception:
                errors += 1
        return samples, errors
    for _ in range(max(1, n // concurrency)):
        res = await asyncio.gather(*(fn() for _ in range(concurrency)), return_exceptions=True)
        for r in res:
            if isinstance(r, BaseException):
                errors += 1
            else:
                samples.append(r)
    return samples, errors


async def measure_pair(direct, broker, n, concurrency=1):
    """Both paths interleaved (a call or a round of each in turn), so a change in the machine's load
    during the row hits both alike; returns ((samples, errors), (samples, errors), direct CPU, client CPU)."""
    d, b = ([], 0), ([], 0)
    cpu = [0.0, 0.0]
    step = concurrency if concurrency > 1 else 1
    for _ in range(max(1, n // step)):
        out = []
        for i, fn in enumerate((direct, broker)):
            c0 = time.process_time()
            out.append(await measure(fn, step, concurrency))
            cpu[i] += time.process_time() - c0
        d = (d[0] + out[0][0], d[1] + out[0][1])
        b = (b[0] + out[1][0], b[1] + out[1][1])
    return d, b, cpu[0], cpu[1]


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def row(name, d, b, to_finish=()):
    (ds, de), (bs, be) = d, b
    dm, bm = statistics.median(ds) * 1e3, statistics.median(bs) * 1e3
    d99, b99 = pct(ds, 99) * 1e3, pct(bs, 99) * 1e3
    print(f"{name:<34} {dm:8.2f} {bm:8.2f} {bm - dm:+8.2f} | {d99:8.2f} {b99:8.2f} {b99 - d99:+8.2f} | "
          f"{len(ds) + len(bs):5d} {de + be:4d}")
    fin = [x for x in to_finish if x is not None]
    if fin:
        fm, f99 = statistics.median(fin) * 1e3, pct(fin, 99) * 1e3
        print(f"{'  vs direct to its finish_reason':<34} {fm:8.2f} {bm:8.2f} {bm - fm:+8.2f} | {f99:8.2f} "
              f"{b99:8.2f} {b99 - f99:+8.2f} |")
    return bm - dm


async def main_async(args):
    import concurrent.futures

    import httpx

    from jupyter_securellm.kernel.client import BrokerClient
    from jupyter_securellm.server.transport import pooled_client

    tmp = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    s = Setup(tmp, args.profile_server)
    load0 = os.getloadavg()
    try:
        import litellm

        litellm.suppress_debug_info = True
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        same_transport = pooled_client(timeout=60)  # the broker's own provider client (server/transport.py)
        use_client(litellm, same_transport)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(args.concurrency, 1))
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            if args.client == "kernel":
                kc = BrokerClient(s.broker_url, s.kernel_token, timeout=60)

                async def broker_call(_client, s, stream, trap=False):  # noqa: F811 - the kernel's client
                    return await loop.run_in_executor(pool, kernel_call, kc, stream, trap)
            else:
                broker_call = globals()["broker_call"]
            # warm-up both paths (first calls import and build clients; the server's first ~20 calls are slower)
            for stream in (False, True):
                for trap in (False, True):
                    for _ in range(20):
                        await direct_call(litellm, s, stream, trap)
                        await broker_call(client, s, stream, trap)
            print(f"broker bench: n={args.n} sequential, {args.concurrency} concurrent x {args.rounds} rounds; "
                  f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average at start "
                  f"{load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
            print("direct = litellm in this process with the broker's provider client (same quick-ACK transport); "
                  f"broker = {'the kernel client (kernel/client.py)' if args.client == 'kernel' else 'pooled httpx'}")
            print(f"{'latency (ms)':<34} {'direct':>8} {'broker':>8} {'added':>8} | {'p99 dir':>8} {'p99 brk':>8} "
                  f"{'added':>8} | {'calls':>5} {'err':>4}")
            results, cpu = {}, {}
            rows = (
                ("single, non-streaming", False, 1, args.n, False),
                ("single, streaming", True, 1, args.n, False),
                (f"{args.concurrency} concurrent, streaming", True, args.concurrency, args.concurrency * args.rounds,
                 False),
                ("trap provider, non-streaming", False, 1, args.n // 2, True),
                ("trap provider, streaming", True, 1, args.n // 2, True),
            )
            for (name, stream, conc, n, trap), key in zip(rows, ROW_KEYS):
                if args.only and key not in args.only:
                    continue
                srv0 = proc_cpu(s.server_pid)
                TO_FINISH.clear()
                d, b, direct_cpu, client_cpu = await measure_pair(
                    lambda: direct_call(litellm, s, stream, trap), lambda: broker_call(client, s, stream, trap), n, conc)
                srv1 = proc_cpu(s.server_pid)
                results[name] = row(name, d, b, TO_FINISH if stream else ())
                cpu[name] = (direct_cpu / n * 1e3, (srv1 - srv0) / n * 1e3, client_cpu / n * 1e3)
            if not args.only or "reference" in args.only:
                # reference: litellm's default pooled client against the same stand-ins (the latency trap)
                use_client(litellm, None)
                for _ in range(3):
                    await direct_call(litellm, s, False, False)
                ref = {}
                for name, trap in (("stand-in provider", False), ("trap provider", True)):
                    samples, _ = await measure(lambda: direct_call(litellm, s, False, trap), max(10, args.n // 4))
                    ref[name] = statistics.median(samples) * 1e3
                use_client(litellm, same_transport)
                print("\nreference, non-streaming: direct litellm with its DEFAULT pooled client: "
                      + ", ".join(f"{k} median {v:.2f} ms" for k, v in ref.items()))
            await same_transport.aclose()
            pool.shutdown()
            print("\nCPU ms per call (shows where added latency under concurrency comes from on a busy 2-core box):")
            for name, (direct_cpu, server_cpu, client_cpu) in cpu.items():
                print(f"  {name:<32} direct litellm {direct_cpu:6.2f} | broker server {server_cpu:6.2f} "
                      f"+ kernel-side HTTP client {client_cpu:6.2f}")
            load1 = os.getloadavg()
            print(f"\nload average at end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    finally:
        s.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


#: --only names, in the order of the rows
ROW_KEYS = ("single", "stream", "concurrent", "trap", "trap-stream")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--only", nargs="+", choices=ROW_KEYS + ("reference",), metavar="ROW",
                    help="run only these rows: " + ", ".join(ROW_KEYS + ("reference",))
                    + " (e.g. --only single stream: the two single-call rows, quicker)")
    ap.add_argument("--client", choices=("kernel", "httpx"), default="kernel",
                    help="the broker side's client: the kernel's own (default) or a pooled httpx client")
    ap.add_argument("--profile-server", metavar="FILE", help="run the server under cProfile, stats to FILE")
    args = ap.parse_args(argv)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
