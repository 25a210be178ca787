"""Governance costs, side by side in one run.

1. Policy decision latency with the example policies (examples/policies, 5 files): regopy with a
   compiled bundle (what the server uses) vs regopy's plain `query` (recompiles every call).
   Target: p50 <= 1 ms, p99 <= 3 ms.
2. Audit throughput: group commit (one fsync per batch, 16 writers) vs one fsync per record.
   Target: >= 5,000 records/s with group commit.
3. Governance overhead per call: the broker's governance steps (policy decision, SQLite budget
   reserve + settle, the decision and call audit records with the call record durable) vs none.
   Target: <= 5 ms median added per call.

    .venv/bin/python benchmarks/bench_governance.py [--decisions 3000] [--records 20000] [--calls 300]
                                                    [--dir DIR]

`--dir` puts the audit log and the SQLite ledger on the file system you deploy on: fsync cost is
a property of the disk.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jupyter_securellm.governance.audit import AuditLog  # noqa: E402
from jupyter_securellm.governance.budget import BudgetLedger  # noqa: E402
from jupyter_securellm.governance.policy import QUERY, PolicyEngine, _new_interpreter, build_input  # noqa: E402
from jupyter_securellm.governance.service import Context, Governance  # noqa: E402

EXAMPLES = ROOT / "examples" / "policies"


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def decisions(n: int) -> None:
    eng = PolicyEngine([EXAMPLES], reload_interval=1e9)
    inputs = [build_input(user=f"u{i % 7}", action="chat", groups=[["research"], ["data-science"], []][i % 3],
                          model=["gpt", "claude", "gpt-mini"][i % 3], request={"max_tokens": [100, 9000][i % 2]},
                          timezone="Europe/Paris") for i in range(64)]
    for inp in inputs:
        eng.decide(inp)
    bundle = []
    for i in range(n):
        t0 = time.perf_counter()
        eng.decide(inputs[i % 64])
        bundle.append((time.perf_counter() - t0) * 1e3)
    plain_interp = _new_interpreter()
    for f in sorted(p for p in EXAMPLES.glob("*.rego") if not p.name.endswith("_test.rego")):
        plain_interp.add_module(str(f), f.read_text())
    plain = []
    for i in range(max(200, n // 10)):
        t0 = time.perf_counter()
        plain_interp.set_input(inputs[i % 64])
        plain_interp.query(QUERY)
        plain.append((time.perf_counter() - t0) * 1e3)
    print(f"\n1. policy decision latency, {len(eng.files)} example policy files (ms)")
    print(f"   {'':28} {'p50':>8} {'p99':>8} {'n':>7}")
    print(f"   {'bundle (server path)':28} {pct(bundle, 50):8.3f} {pct(bundle, 99):8.3f} {len(bundle):7}")
    print(f"   {'plain query (recompiles)':28} {pct(plain, 50):8.3f} {pct(plain, 99):8.3f} {len(plain):7}")
    print(f"   target p50 <= 1 ms, p99 <= 3 ms: {'met' if pct(bundle, 50) <= 1 and pct(bundle, 99) <= 3 else 'NOT met'}")


REC = {"type": "call", "user": "ana", "via": "kernel", "action": "chat", "model": "gpt",
       "provider_host": "api.openai.com", "tokens_in": 120, "tokens_out": 300, "cost_usd": 0.0002,
       "latency_ms": 812.5, "status": "ok"}


def _audit_run(d: Path, group: bool, count: int, in_flight: int) -> float:
    """`in_flight` concurrent callers (asyncio tasks, as in the server), each awaiting its durable write."""
    path = d / f"audit-{'group' if group else 'single'}-{time.time_ns()}.jsonl"
    log = AuditLog(path, group_commit=group, rotate_bytes=1 << 40)

    async def caller(k):
        for _ in range(k):
            await log.awrite(REC)

    async def all_callers():
        await asyncio.gather(*(caller(count // in_flight) for _ in range(in_flight)))
    t0 = time.perf_counter()
    asyncio.run(all_callers())
    dt = time.perf_counter() - t0
    log.close()
    return (count // in_flight) * in_flight / dt


def audit_throughput(d: Path, n: int) -> None:
    print("\n2. audit throughput: concurrent calls, each acknowledged once its record is durable (records/s)")
    print(f"   {'calls in flight':>16} {'group commit':>13} {'fsync per record':>17} {'ratio':>6}")
    best = 0.0
    for in_flight in (16, 256):
        g = _audit_run(d, True, n, in_flight)
        s = _audit_run(d, False, max(in_flight * 4, n // 40), in_flight)
        best = max(best, g)
        print(f"   {in_flight:16} {g:13.0f} {s:17.0f} {g / s:5.1f}x")
    print(f"   target >= 5,000 records/s with group commit: {'met' if best >= 5000 else 'NOT met'}")


MODELS = {"gpt": {"model": "openai/gpt-4o-mini", "secret_path": "llm/openai", "secret_key": "api_key"}}


async def _calls(gov: Governance | None, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        if gov is not None:
            ctx = Context(user=f"u{i % 5}", action="chat", model="gpt", litellm_model="openai/gpt-4o-mini",
                          host="api.openai.com", host_allowed=True, max_tokens=200, prompt_chars=400,
                          groups=("research",))
            t = await gov.admit(ctx)
            await gov.finish(t, tokens_in=100, tokens_out=150)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def overhead(d: Path, n: int) -> None:
    gov = Governance(policy=PolicyEngine([], reload_interval=1e9),
                     ledger=BudgetLedger(f"sqlite:///{d}/budget-{time.time_ns()}.sqlite",
                                         {"default": {"daily_tokens": 10 ** 12, "rpm": 10 ** 6}}),
                     audit=AuditLog(d / f"audit-overhead-{time.time_ns()}.jsonl"), models=MODELS)
    asyncio.run(_calls(gov, 20))
    on = asyncio.run(_calls(gov, n))
    off = asyncio.run(_calls(None, n))
    gov.close()
    print(f"\n3. governance steps per call: policy + SQLite budget reserve/settle + durable audit (ms)")
    print(f"   {'':28} {'p50':>8} {'p99':>8}")
    print(f"   {'governance on':28} {pct(on, 50):8.3f} {pct(on, 99):8.3f}")
    print(f"   {'governance off':28} {pct(off, 50):8.3f} {pct(off, 99):8.3f}")
    added = pct(on, 50) - pct(off, 50)
    print(f"   added median {added:.3f} ms; target <= 5 ms: {'met' if added <= 5 else 'NOT met'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decisions", type=int, default=3000)
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--dir", help="where the audit log and SQLite ledger go (default: a temp dir)")
    args = ap.parse_args(argv)
    print(f"bench_governance: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} (figures from a shared machine are noisy)")
    with tempfile.TemporaryDirectory(prefix="bench-gov-", dir=args.dir) as tmp:
        d = Path(tmp)
        decisions(args.decisions)
        audit_throughput(d, args.records)
        overhead(d, args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
