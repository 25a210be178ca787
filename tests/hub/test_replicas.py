"""Two broker replicas behind one Hub share budgets through PostgreSQL; each keeps its own audit chain.

The z2jh sketch in docs/jupyterhub.md runs the broker as a Deployment with 2 replicas. Here: two managed
services of the same uid and config (`securellm`, `securellm-r1`), both with `c.SecureLLM.database_url`
on one real PostgreSQL (jupyter_securellm.testing.postgres) and an `audit_log_path` of their own.

- Budgets are exact across replicas: a reservation locks the user's row (`SELECT ... FOR UPDATE`), so
  concurrent calls on both never overspend; the ledger's settled usage equals what the provider reported.
- Audit: one hash chain per replica (the audit log is a per-process file, not serialized through the
  database); each verifies with `jupyter-securellm audit verify`, and together they hold every call.
- Groups come from the Hub: the budget is the group's (Alice is in `analysts`), Bob gets the default.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from jupyter_securellm.testing.hub import ROOT, SERVICE, HubStack, http

pytestmark = pytest.mark.timeout(600)

REPLICAS = [SERVICE, f"{SERVICE}-r1"]
LIMIT = 250  # analysts' daily tokens; the default (everyone else) cannot afford one call
BODY = {"model": "gpt", "max_tokens": 20, "messages": [{"role": "user", "content": "alpha beta gamma delta"}]}


@pytest.fixture(scope="module")
def replicas(openbao, postgres):
    from jupyter_securellm.testing.provider import FakeProvider
    from jupyter_securellm.testing.pytest_plugin import new_provider_key

    budgets = {"default": {"daily_tokens": 5}, "groups": {"analysts": {"daily_tokens": LIMIT}}}
    with FakeProvider(new_provider_key()) as provider:
        stack = HubStack(openbao, provider, replicas=2, audit=True,
                         broker_config={"database_url": postgres.create_database(), "budgets": budgets})
        stack.dsn = stack.broker_extra["database_url"].replace("postgresql+psycopg://", "postgresql://")
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


def _chat(stack, token, service):
    code, body = http("POST", stack.service_url("chat/completions", service=service), BODY, token=token)
    return service, code, body


def _ledger(stack, user):
    import psycopg

    with psycopg.connect(stack.dsn) as conn:
        rows = conn.execute('SELECT state, tokens, est_tokens, server FROM securellm_budget_calls WHERE "user" = %s',
                            (user,)).fetchall()
    return rows


def _audit(stack, service):
    path = stack.audit_paths[service]
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_budgets_exact_and_audit_verifiable_across_two_replicas(replicas):
    st = replicas
    alice, bob = st.alice, st.bob
    tok = st.user_token(alice)
    pids = {s: st.service_pid(s) for s in REPLICAS}
    assert len(set(pids.values())) == 2 and 0 not in pids.values(), pids  # two live processes

    # 1. concurrent: 16 calls at once, alternating replicas
    results = []
    lock = threading.Lock()

    def one(i):
        r = _chat(st, tok, REPLICAS[i % 2])
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    # 2. then one at a time, alternating, until the budget refuses (at most 60 calls)
    for i in range(60):
        r = _chat(st, tok, REPLICAS[i % 2])
        results.append(r)
        if r[1] == 429:
            break

    answered = [r for r in results if r[1] == 200]
    refused = [r for r in results if r[1] != 200]
    assert len(results) >= 17 and answered and refused, [(s, c) for s, c, _ in results]
    for _, code, body in refused:  # every refusal is the budget, with its reason
        assert code == 429 and body["error"]["type"] == "budget_exhausted", body
    assert results[-1][1] == 429, "the sequential phase must end on the budget"
    assert {s for s, _, _ in answered} == set(REPLICAS), "both replicas must have served calls"

    rows = _ledger(st, alice)
    settled = [r for r in rows if r[0] == "settled"]
    est = max(r[2] for r in rows)  # one request's estimate
    used = sum(r[1] for r in settled)
    assert not [r for r in rows if r[0] == "reserved"], "no reservation may be left behind"
    assert len(settled) == len(answered)
    assert {r[3] for r in settled} == {r[3] for r in rows} and len({r[3] for r in settled}) == 2  # both servers
    # exact: what the ledger charged is what the provider reported, call by call in total ...
    assert used == sum(b["usage"]["total_tokens"] for _, _, b in answered)
    # ... never over the limit (estimates are upper bounds), and the last refusal was due: one more call
    # could have overspent it
    assert used <= LIMIT and used + est > LIMIT, (used, est, LIMIT)
    # ... and both replicas see the same shared figure
    for s in REPLICAS:
        code, status = http("GET", st.service_url("status", service=s), token=tok)
        assert code == 200 and status["groups"] == ["analysts"], status
        assert status["budget"]["daily_tokens"]["used"] == used and status["budget"]["daily_tokens"]["limit"] == LIMIT

    # groups come from the Hub: Bob (not in analysts) gets the default and cannot afford a call
    _, code, body = _chat(st, st.user_token(bob), REPLICAS[1])
    assert code == 429 and body["error"]["type"] == "budget_exhausted", body

    # audit: one chain per replica, each intact, together holding every call and every refusal
    calls, denials = 0, set()
    for s in REPLICAS:
        out = subprocess.run([sys.executable, "-m", "jupyter_securellm", "audit", "verify", "--format", "json",
                              str(st.audit_paths[s])], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert json.loads(out.stdout)["ok"] is True
        recs = _audit(st, s)
        assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))  # its own chain, from 1
        mine = [r for r in recs if r.get("user") == alice]
        calls += sum(1 for r in mine if r["type"] == "call")
        # a refusal is exactly one deny record (one decision, one record)
        deny = [r for r in mine if r["type"] == "decision" and r.get("error_type") == "budget_exhausted"]
        assert len({r["request_id"] for r in deny}) == len(deny), "a refusal was recorded twice"
        denials |= {r["request_id"] for r in deny}
        assert any(r["type"] == "call" for r in mine), f"replica {s} served calls but logged none"
    assert calls == len(answered) and len(denials) == len(refused)
    assert sum(r.get("tokens_in", 0) + r.get("tokens_out", 0) for s in REPLICAS for r in _audit(st, s)
               if r["type"] == "call" and r.get("user") == alice) == used

    # tamper control: editing one record of one replica's chain is caught by the same command
    path = st.audit_paths[REPLICAS[1]]
    lines = path.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["user"] = bob
    lines[0] = json.dumps(rec, separators=(",", ":"), sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    out = subprocess.run([sys.executable, "-m", "jupyter_securellm", "audit", "verify", str(path)],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert out.returncode == 1 and "TAMPERED" in out.stdout, out.stdout + out.stderr


def _chat_calls(metrics_text: str) -> float:
    """Sum of `jupyter_securellm_calls_total{action="chat",...}` over every model and status."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text.splitlines()
               if line.startswith('jupyter_securellm_calls_total{action="chat"'))


def _metrics(stack, service, token):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(stack.service_url("metrics", service=service),
                                 headers={"Authorization": f"token {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def test_the_service_serves_metrics_and_closes_its_audit_log_when_stopped(replicas):
    """Last in this module: it stops replica 0 (the Hub may start it again; nothing later uses it)."""
    import signal
    import time

    st, service = replicas, REPLICAS[0]
    tok = st.user_token(st.alice)
    code, _, text = _metrics(st, service, None)
    assert code == 401, text
    code, ctype, before = _metrics(st, service, tok)
    assert code == 200 and ctype.startswith("text/plain") and "# TYPE jupyter_securellm_calls_total counter" in before
    codes = [_chat(st, tok, service)[1] for _ in range(3)]
    assert all(c in (200, 429) for c in codes), codes
    code, _, after = _metrics(st, service, tok)
    assert code == 200 and _chat_calls(after) - _chat_calls(before) == 3, (codes, after)
    served = _chat_calls(after)  # every chat this replica answered or refused since it started

    pid = st.service_pid(service)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}"), "the broker service did not stop on SIGTERM"
    assert "SecureLLM broker service: audit log closed" in st.log_text()
    out = subprocess.run([sys.executable, "-m", "jupyter_securellm", "audit", "verify", "--format", "json",
                          str(st.audit_paths[service])], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert out.returncode == 0 and json.loads(out.stdout)["ok"] is True, out.stdout + out.stderr
    # every chat is exactly one closing record: a `call`, or one deny decision (one decision, one record)
    recs = _audit(st, service)
    closing = [r for r in recs if r["type"] == "call" or (r["type"] == "decision" and r.get("decision") == "deny")]
    assert len(closing) == served, (len(closing), served)
    assert len({r["request_id"] for r in closing}) == len(closing)
