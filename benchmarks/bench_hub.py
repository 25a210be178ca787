"""Load on a real JupyterHub: N users' kernels x M concurrent streaming calls, tier 3 against tier 2.

Tier 3: every kernel calls its own server, which forwards to the broker service (another Unix user).
Tier 2: the same calls, each user's server running the broker itself. Same machine, same run, same
stand-in provider, so the ratio is meaningful even when the machine is busy (say so next to figures).

Governance is on in both tiers: budgets in a shared PostgreSQL (jupyter_securellm/testing/postgres.py);
in tier 3 the service also writes its hash-chained audit log.

Reports: calls answered / refused (with reasons) / lost; p50 and p99 latency per tier and the added
latency of tier 3; the service's RSS before and after a bounded soak (default 60 s, --soak 600 for
the 10-minute one); for tier 3, audit records against calls (one `call` record per answered call, a
deny decision per refused one, the chain verified) and budgets exact (the tokens the ledger settled
equal the usage the provider reported, summed over every call). Needs root (real Unix users), like tests/hub.

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
from jupyter_securellm.testing.postgres import PostgresCluster  # noqa: E402
from jupyter_securellm.testing.provider import FakeProvider  # noqa: E402
from jupyter_securellm.testing.pytest_plugin import new_provider_key  # noqa: E402

# Runs in each kernel: M concurrent streaming calls through this kernel's broker URL.
KERNEL_LOAD = r'''
import json, os, threading, time, urllib.request, urllib.error
def _one(i, out):
    body = json.dumps({"model": "gpt", "stream": True, "max_tokens": 64, "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": f"call {i} alpha beta gamma delta"}]}).encode()
    req = urllib.request.Request(os.environ["JUPYTER_SECURELLM_URL"] + "/chat/completions", data=body, method="POST",
                                 headers={"X-SecureLLM-Token": TOKEN, "Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read().decode()
        ok = raw.rstrip().endswith("data: [DONE]") and '"error"' not in raw
        usage = [json.loads(e[6:])["usage"] for e in raw.split("\n\n")
                 if e.startswith("data: {") and '"usage"' in e and json.loads(e[6:]).get("usage")]
        out[i] = {"status": "answered" if ok else "refused", "reason": None if ok else raw[-200:],
                  "s": time.perf_counter() - t0, "tokens": usage[-1]["total_tokens"] if usage else None}
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


def governance_check(stack: HubStack, calls: list[dict], provider, dsn: str) -> dict:
    """Tier 3: audit records against calls, the chain verified, and the ledger against the provider's usage."""
    import subprocess

    import psycopg

    recs = [json.loads(ln) for ln in stack.audit_paths["securellm"].read_text().splitlines() if ln.strip()]
    chat = [r for r in recs if r.get("action") == "chat"]
    call_recs = [r for r in chat if r["type"] == "call"]
    denied = [r for r in chat if r["type"] == "decision" and r.get("decision") == "deny"]  # one per refusal
    verify = subprocess.run([sys.executable, "-m", "jupyter_securellm", "audit", "verify", "--format", "json",
                             str(stack.audit_paths["securellm"])], capture_output=True, text=True, timeout=300)
    with psycopg.connect(dsn) as conn:
        settled, reserved = conn.execute(
            "SELECT COALESCE(SUM(tokens) FILTER (WHERE state = 'settled'), 0), "
            "COUNT(*) FILTER (WHERE state = 'reserved') FROM securellm_budget_calls").fetchone()
    seen = sum(c["tokens"] or 0 for c in calls if c["status"] == "answered")  # the usage chunks clients got
    answered = sum(1 for c in calls if c["status"] == "answered")
    return {"calls": len(calls), "answered": answered, "audit_call_records": len(call_recs),
            "audit_denied_requests": len(denied), "audit_records_equal_calls": len(call_recs) + len(denied) == len(calls),
            "audit_chain_ok": verify.returncode == 0,
            "provider_requests": len([r for r in provider.requests if r.path.endswith("/chat/completions")]),
            "provider_reported_tokens": seen, "ledger_settled_tokens": int(settled),
            "ledger_left_reserved": int(reserved), "budgets_exact": int(settled) == seen and not reserved,
            "audit_tokens": sum(r.get("tokens_in", 0) + r.get("tokens_out", 0) for r in call_recs)}


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
    pg = PostgresCluster().start()
    per_round = args.users * args.concurrency
    budgets = {"default": {"daily_tokens": 100_000_000}}  # governance on; nobody should be refused
    try:
        for mode in ("hub-service", "local"):
            db = pg.create_database()
            stack = HubStack(bao, provider, mode=mode, n_users=args.users, groups={},
                             broker_config={"budgets": budgets, "database_url": db}, audit=mode == "hub-service")
            try:
                stack.start()
                kernels = start(stack, args.users)
                provider.reset()
                all_calls = run_round(kernels, 2)  # warm-up: litellm import, connections (not measured)
                calls = []
                for _ in range(args.rounds):
                    calls += run_round(kernels, args.concurrency)
                tier = "tier3" if mode == "hub-service" else "tier2"
                report[tier] = summary(tier, calls, per_round * args.rounds)
                if mode == "hub-service":
                    pid = stack.service_pid()
                    before = rss_kb(pid)
                    t0 = time.monotonic()
                    t_end, soak_calls, rounds, samples = t0 + args.soak, [], 0, []
                    while time.monotonic() < t_end:
                        soak_calls += run_round(kernels, args.concurrency)
                        rounds += 1
                        samples.append((round(time.monotonic() - t0), rss_kb(pid), os.getloadavg()[0]))
                    after = rss_kb(pid)
                    report["soak"] = {"rounds": rounds, **summary("soak", soak_calls, per_round * rounds),
                                      "service_rss_before_kb": before, "service_rss_after_kb": after,
                                      "growth_pct": round(100 * (after - before) / before, 1) if before else None,
                                      "same_pid": stack.service_pid() == pid,
                                      "service_rss_min_max_kb": [min(r for _, r, _ in samples), max(r for _, r, _ in samples)]
                                      if samples else None,
                                      "load_avg_1m_min_max": [min(x for *_, x in samples), max(x for *_, x in samples)]
                                      if samples else None,
                                      "samples_s_rsskb_load": samples[:: max(1, len(samples) // 20)]}
                    all_calls += calls + soak_calls
                    report["governance"] = governance_check(stack, all_calls, provider,
                                                            db.replace("postgresql+psycopg://", "postgresql://"))
                for k in kernels:
                    k.shutdown()
            finally:
                stack.stop()
    finally:
        pg.stop()
        provider.stop()
        bao.stop()
    if "tier2" in report and "tier3" in report:
        report["added_by_tier3_ms"] = {"p50": round(report["tier3"]["p50_ms"] - report["tier2"]["p50_ms"], 1),
                                       "p99": round(report["tier3"]["p99_ms"] - report["tier2"]["p99_ms"], 1)}
    report["load_avg_at_end"] = os.getloadavg()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for k in ("tier3", "tier2", "soak", "governance"):
            if k in report:
                print(k, json.dumps(report[k]))
        print("added by tier 3 (ms):", report.get("added_by_tier3_ms"))
        print("load average start/end:", report["load_avg_at_start"], report["load_avg_at_end"])
    gov = report.get("governance", {})
    ok = all(report.get(t, {}).get("lost", 1) == 0 for t in ("tier3", "tier2")) and bool(
        gov.get("audit_records_equal_calls") and gov.get("audit_chain_ok") and gov.get("budgets_exact"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
