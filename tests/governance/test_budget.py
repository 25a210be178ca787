"""Budgets and rate limits on SQLite and on a real PostgreSQL: reserve-then-settle under concurrency
(threads and separate processes), lease expiry, restart, daily/monthly resets under an injected clock."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from jupyter_securellm.governance.budget import BudgetError, BudgetLedger, effective_limits, validate_budgets

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, when: dt.datetime):
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def at(*args, tz="UTC"):
    return dt.datetime(*args, tzinfo=ZoneInfo(tz))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/budget.sqlite"
    return request.getfixturevalue("postgres_url")


def _settled_tokens(url: str, user: str) -> int:
    eng = sa.create_engine(url)
    with eng.connect() as c:
        n = c.execute(sa.text("SELECT COALESCE(SUM(tokens), 0) FROM securellm_budget_calls "
                              "WHERE \"user\" = :u AND state = 'settled'"), {"u": user}).scalar()
    eng.dispose()
    return int(n)


def test_fifty_concurrent_calls_never_overspend(db_url):
    limit, est = 1050, 100
    ledger = BudgetLedger(db_url, {"default": {"daily_tokens": limit}})
    ok, refused, barrier = [], [], threading.Barrier(50)

    def call():
        barrier.wait()
        try:
            r = ledger.reserve("ana", est_tokens=est, est_usd=0.0)
        except BudgetError as exc:
            refused.append(exc)
            return
        ok.append(r)
        ledger.settle(r, tokens=est, usd=0.0)

    threads = [threading.Thread(target=call) for _ in range(50)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(ok) == limit // est and len(refused) == 50 - limit // est
    assert all(e.type == "budget_exhausted" and e.resets_at for e in refused)
    assert _settled_tokens(db_url, "ana") <= limit
    assert ledger.status("ana")["daily_tokens"]["used"] == 1000
    ledger.close()


WORKER = r"""
import json, sys, threading
from jupyter_securellm.governance.budget import BudgetError, BudgetLedger
url, n = sys.argv[1], int(sys.argv[2])
ledger = BudgetLedger(url, {"default": {"daily_tokens": 1050}})
ok = []
go = threading.Event()
def call():
    go.wait()
    try:
        r = ledger.reserve("bo", est_tokens=100, est_usd=0.0)
    except BudgetError:
        return
    ok.append(r.id)
    ledger.settle(r, tokens=100, usd=0.0)
ts = [threading.Thread(target=call) for _ in range(n)]
[t.start() for t in ts]
print("ready", flush=True)
sys.stdin.readline()
go.set()
[t.join() for t in ts]
print(json.dumps(ok), flush=True)
"""


def test_two_processes_sharing_postgresql_never_overspend(postgres_url):
    BudgetLedger(postgres_url, {}).close()  # migrate once (migrations are serialized anyway)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, postgres_url, "25"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    accepted = []
    for p in procs:
        accepted += json.loads(p.stdout.readline())
        assert p.wait(60) == 0
    assert len(accepted) == 10
    assert _settled_tokens(postgres_url, "bo") == 1000


def test_a_crashed_servers_reservation_expires_with_its_lease(db_url):
    clock = Clock(at(2026, 11, 30, 10))
    ledger = BudgetLedger(db_url, {"default": {"daily_tokens": 1000}}, lease_seconds=120, clock=clock)
    ledger.reserve("cy", est_tokens=900, est_usd=0.0)  # never settled: the server "crashed"
    with pytest.raises(BudgetError):
        ledger.reserve("cy", est_tokens=200, est_usd=0.0)
    clock.advance(121)
    assert ledger.status("cy")["daily_tokens"]["used"] == 0
    ledger.reserve("cy", est_tokens=200, est_usd=0.0)  # unblocked
    ledger.close()


def test_a_restart_keeps_usage(tmp_path):
    url = f"sqlite:///{tmp_path}/b.sqlite"
    a = BudgetLedger(url, {"default": {"daily_tokens": 1000}})
    a.settle(a.reserve("di", est_tokens=300, est_usd=0.0), tokens=250, usd=0.0)
    a.close()
    b = BudgetLedger(url, {"default": {"daily_tokens": 1000}})
    assert b.status("di")["daily_tokens"]["used"] == 250
    assert b.usage("di")["tokens_today"] == 250
    b.close()


def test_daily_and_monthly_resets_in_the_policy_time_zone(db_url):
    tz = "Europe/Paris"
    clock = Clock(at(2026, 11, 29, 23, 50, tz=tz))
    ledger = BudgetLedger(db_url, {"default": {"daily_tokens": 500, "monthly_tokens": 800}}, timezone=tz,
                          clock=clock)
    ledger.settle(ledger.reserve("ed", est_tokens=400, est_usd=0.0), tokens=400, usd=0.0)
    st = ledger.status("ed")
    assert st["daily_tokens"]["left"] == 100
    assert st["daily_tokens"]["resets_at"] == "2026-11-29T23:00:00Z"  # local midnight, in UTC
    with pytest.raises(BudgetError) as exc:
        ledger.reserve("ed", est_tokens=200, est_usd=0.0)
    assert exc.value.dimension == "daily_tokens" and exc.value.resets_at == "2026-11-29T23:00:00Z"
    clock.advance(20 * 60)  # 00:10 local on Nov 30: a new day, same month
    st = ledger.status("ed")
    assert st["daily_tokens"]["used"] == 0 and st["monthly_tokens"]["used"] == 400
    ledger.settle(ledger.reserve("ed", est_tokens=400, est_usd=0.0), tokens=400, usd=0.0)
    with pytest.raises(BudgetError) as exc:
        ledger.reserve("ed", est_tokens=50, est_usd=0.0)
    assert exc.value.dimension == "monthly_tokens" and exc.value.resets_at == "2026-11-30T23:00:00Z"
    clock.t = at(2026, 12, 1, 0, 5, tz=tz).timestamp()
    st = ledger.status("ed")
    assert st["monthly_tokens"]["used"] == 0 and st["monthly_tokens"]["resets_at"] == "2026-12-31T23:00:00Z"
    ledger.close()


def test_rate_limit_per_minute_with_reset_time(tmp_path):
    clock = Clock(at(2026, 11, 30, 10))
    ledger = BudgetLedger(f"sqlite:///{tmp_path}/b.sqlite", {"users": {"fy": {"rpm": 3}}}, clock=clock)
    for _ in range(3):
        ledger.settle(ledger.reserve("fy", est_tokens=1, est_usd=0.0), tokens=1, usd=0.0)
        clock.advance(1)
    with pytest.raises(BudgetError) as exc:
        ledger.reserve("fy", est_tokens=1, est_usd=0.0)
    assert exc.value.type == "rate_limited" and exc.value.resets_at == "2026-11-30T10:01:00Z"
    clock.advance(58)
    ledger.reserve("fy", est_tokens=1, est_usd=0.0)
    ledger.close()


def test_released_calls_cost_nothing(tmp_path):
    ledger = BudgetLedger(f"sqlite:///{tmp_path}/b.sqlite", {"default": {"daily_tokens": 100, "rpm": 1}})
    ledger.release(ledger.reserve("gu", est_tokens=100, est_usd=0.0))
    ledger.reserve("gu", est_tokens=100, est_usd=0.0)
    ledger.close()


def test_usd_budgets_and_unknown_prices(tmp_path):
    ledger = BudgetLedger(f"sqlite:///{tmp_path}/b.sqlite", {"default": {"daily_usd": 0.01}})
    with pytest.raises(BudgetError) as exc:
        ledger.reserve("ho", est_tokens=10, est_usd=None, model="mystery")
    assert "No price is known for model 'mystery'" in exc.value.message
    ledger.settle(ledger.reserve("ho", est_tokens=10, est_usd=0.006), tokens=10, usd=0.006)
    with pytest.raises(BudgetError) as exc:
        ledger.reserve("ho", est_tokens=10, est_usd=0.006)
    assert exc.value.dimension == "daily_usd"
    assert ledger.status("ho")["daily_usd"]["used"] == pytest.approx(0.006)
    ledger.close()
    free = BudgetLedger(f"sqlite:///{tmp_path}/c.sqlite", {"default": {"daily_tokens": 100}})
    free.reserve("ho", est_tokens=10, est_usd=None, model="mystery")  # no USD limit: allowed, cost unknown
    free.close()


def test_user_over_group_over_default_and_the_most_generous_group_wins():
    b = {"default": {"daily_tokens": 100, "rpm": 10},
         "groups": {"a": {"daily_tokens": 500}, "b": {"daily_tokens": 300, "rpm": 20}, "c": {"daily_tokens": None}},
         "users": {"vip": {"daily_tokens": 5}}}
    validate_budgets(b)
    assert effective_limits(b, "x") == {"daily_tokens": 100, "rpm": 10}
    assert effective_limits(b, "x", ["a", "b"]) == {"daily_tokens": 500, "rpm": 20}
    assert effective_limits(b, "x", ["a", "c"]) == {"rpm": 10}  # None = unlimited is the most generous
    assert effective_limits(b, "vip", ["a"]) == {"daily_tokens": 5, "rpm": 10}


@pytest.mark.parametrize("bad,msg", [
    ({"weekly": {}}, "unknown key"), ({"default": {"daily_tokens": -1}}, ">= 0"),
    ({"users": {"x": {"hourly": 3}}}, "unknown dimension 'hourly'"), ({"groups": []}, "must be a dict"),
])
def test_bad_budget_config_is_named(bad, msg):
    with pytest.raises(ValueError, match=msg):
        validate_budgets(bad)
