"""Load on a real JupyterHub: N users' kernels x M concurrent streaming calls, tier 3 against tier 2.

Tier 3: every kernel calls its own server, which forwards to the broker service (another Unix user).
Tier 2: the same calls, each user's server running the broker itself. Same machine, same run, same
stand-in provider, so the ratio is meaningful even when the machine is busy (say so next to figures).

Reports: calls answered / refused (with reasons) / lost; p50 and p99 latency per tier and the added
latency of tier 3; the service's RSS before and after a bounded soak (default 60 s, --soak 600 for
the 10-minute one). Needs root (real Unix users), like tests/hub.

    python benchmarks/bench_hub.py [--users 10] [--concurrency 20] [--rounds 3] [--soak 60]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from jupyter_securellm.testing.hub import HubStack  # noqa: E402
from jupyter_securellm.testing.openbao import OpenBao  # noqa: E402
from jupyter_securellm.testing.provider import FakeProvider  # noqa: E402
from jupyter_securellm.testing.pytest_plugin import new_provider_key  # noqa: E402

# Runs in each kernel: M concurrent streaming calls through this kernel's broker URL.
KERNEL_LOAD = r'''
import json, os, threading, time, urllib.request, urllib.error
def _one(i, out):
    body = json.dumps({"model": "gpt", "stream": True,
                       "messages": [{"role": "user", "content": f"call {i} alpha beta gamma delta"}]}).encode()
    req = urllib.request.Request(os.environ["JUPYTER_SECURELLM_URL"] + "/chat/completions", data=body, method="POST",
                                 headers={"X-SecureLLM-Token": TOKEN, "Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read().decode()
        ok = raw.rstrip().endswith("data: [DONE]") and '"error"' not in raw
        out[i] = {"status": "answered" if ok else "refused", "reason": None if ok else raw[-200:],
                  "s": time.perf_counter() - t0}
    except urllib.error.HTTPError as e:
        out[i] = {"status": "refused", "reason": f"{e.code} {e.read()[:200]!r}", "s": time.perf_counter() - t0}
    except Exception as e:
        out[i] = {"status": "error", "reason": type(e).__name__, "s": time.perf_counter() - t0}
out = {}
ts = [threading.Thread(target=_one, args=(i, out)) for i in range(N)]
[t.start() for t in ts]
[t.join(300) for t in ts]
print(json.dumps([out.get(i, {"status": "lost"}) for i in range(N)]))
'''


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_round(kernels, n: int) -> list[dict]:
    results: list = [None] * len(kernels)

    def drive(j, k):
        try:
            results[j] = k.json(f"N = {n}\n" + KERNEL_LOAD, timeout=600)
        except Exception as exc:  # noqa: BLE001 - a kernel that failed counts as n lost calls
            results[j] = [{"status": "lost", "reason": type(exc).__name__, "s": 0}] * n

    ts = [threading.Thread(target=drive, args=(j, k)) for j, k in enumerate(kernels)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return [r for rs in results for r in rs]


def start(stack: HubStack, users: int):
    for u in stack.user_names:  # ask for every server at once; the Hub spawns them concurrently
        stack.hub("POST", f"users/{u}/server")
    for u in stack.user_names:
        stack.start_server(u, timeout=300)
    kernels = [stack.kernel(u) for u in stack.user_names]
    for k in kernels:
        k.run('import os\nTOKEN = os.environ["JUPYTER_SECURELLM_KERNEL_TOKEN"]')
    return kernels


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def summary(name: str, calls: list[dict], expected: int) -> dict:
    answered = [c for c in calls if c["status"] == "answered"]
    refused = [c for c in calls if c["status"] == "refused"]
    lost = expected - len(answered) - len(refused)
    lat = [c["s"] * 1000 for c in answered]
    s = {"tier": name, "calls": expected, "answered": len(answered), "refused": len(refused), "lost": lost,
         "refusal_reasons": sorted({(c.get("reason") or "")[:80] for c in refused})[:5],
         "p50_ms": round(pct(lat, 50), 1), "p99_ms": round(pct(lat, 99), 1),
         "mean_ms": round(statistics.fmean(lat), 1) if lat else None}
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=20, help="concurrent streaming calls per kernel")
    ap.add_argument("--rounds", type=int, default=3, help="measured rounds per tier")
    ap.add_argument("--soak", type=float, default=60.0, help="seconds of continuous load before the RSS check "
                                                             "(600 for the 10-minute soak)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_hub: needs root (it creates real Unix users, like tests/hub)", file=sys.stderr)
        return 2

    report: dict = {"users": args.users, "concurrency": args.concurrency, "rounds": args.rounds,
                    "soak_s": args.soak, "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}
    bao = OpenBao(Path(tempfile.mkdtemp(prefix="bench-hub-bao-")))
    bao.start()
    bao.enable_kv("secret")
    provider = FakeProvider(new_provider_key()).start()
    per_round = args.users * args.concurrency
    try:
        for mode in ("hub-service", "local"):
            stack = HubStack(bao, provider, mode=mode, n_users=args.users, groups={})
            try:
                stack.start()
                kernels = start(stack, args.users)
                run_round(kernels, 2)  # warm-up: litellm import, connections (not measured)
                calls = []
                for _ in range(args.rounds):
                    calls += run_round(kernels, args.concurrency)
                tier = "tier3" if mode == "hub-service" else "tier2"
                report[tier] = summary(tier, calls, per_round * args.rounds)
                if mode == "hub-service":
                    pid = stack.service_pid()
                    before = rss_kb(pid)
                    t_end, soak_calls, rounds = time.monotonic() + args.soak, [], 0
                    while time.monotonic() < t_end:
                        soak_calls += run_round(kernels, args.concurrency)
                        rounds += 1
                    after = rss_kb(pid)
                    report["soak"] = {"rounds": rounds, **summary("soak", soak_calls, per_round * rounds),
                                      "service_rss_before_kb": before, "service_rss_after_kb": after,
                                      "growth_pct": round(100 * (after - before) / before, 1) if before else None,
                                      "same_pid": stack.service_pid() == pid}
                for k in kernels:
                    k.shutdown()
            finally:
                stack.stop()
    finally:
        provider.stop()
        bao.stop()
    if "tier2" in report and "tier3" in report:
        report["added_by_tier3_ms"] = {"p50": round(report["tier3"]["p50_ms"] - report["tier2"]["p50_ms"], 1),
                                       "p99": round(report["tier3"]["p99_ms"] - report["tier2"]["p99_ms"], 1)}
    report["load_avg_at_end"] = os.getloadavg()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for k in ("tier3", "tier2", "soak"):
            if k in report:
                print(k, json.dumps(report[k]))
        print("added by tier 3 (ms):", report.get("added_by_tier3_ms"))
        print("load average start/end:", report["load_avg_at_start"], report["load_avg_at_end"])
    ok = all(report.get(t, {}).get("lost", 1) == 0 for t in ("tier3", "tier2"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
