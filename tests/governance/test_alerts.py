"""Anomaly alerts: a synthetic spike fires and normal use does not; outside hours, a new address, denial
bursts and a stale kernel token; the webhook reaches a real local listener."""
from __future__ import annotations

import datetime as dt
import http.server
import json
import random
import threading
from zoneinfo import ZoneInfo

import pytest

from jupyter_securellm.governance.alerts import AlertEngine, robust_z


class Clock:
    def __init__(self, when):
        self.t = when.timestamp()

    def __call__(self):
        return self.t


def _week_of_normal_use(eng, clock, user="ana", hours=72, seed=7):
    rng = random.Random(seed)
    fired = []
    for _ in range(hours):
        for _ in range(4):
            fired += eng.observe_call(user, rng.randint(800, 1200))
        clock.t += 3600
    return fired


def test_normal_use_does_not_alert_and_a_spike_does():
    clock = Clock(dt.datetime(2026, 11, 2, 0, tzinfo=ZoneInfo("UTC")))
    eng = AlertEngine(clock=clock)
    assert _week_of_normal_use(eng, clock) == []
    fired = []
    for _ in range(20):
        fired += eng.observe_call("ana", 5000)  # 100k tokens in an hour against ~4k usual
    assert [a.kind for a in fired] == ["spike"]  # raised once, then extended, not repeated
    assert fired[0].severity == "high" and "robust z" in fired[0].message
    assert [a.kind for a in eng.active("ana")] == ["spike"]
    assert eng.active("bob") == []
    clock.t += 2 * 3600
    assert eng.active("ana") == []  # expired after its ttl


def test_robust_z_ignores_earlier_outliers():
    base = [1000] * 20 + [90000]  # one old burst does not raise the baseline
    assert robust_z(1100, base) < 3.5
    assert robust_z(20000, base) > 3.5


def test_outside_hours_new_address_denial_burst_stale_token():
    clock = Clock(dt.datetime(2026, 11, 28, 23, tzinfo=ZoneInfo("Europe/Paris")))  # Saturday night
    eng = AlertEngine(clock=clock, timezone="Europe/Paris", hours={"start": 8, "end": 19, "weekdays": [1, 2, 3, 4, 5]})
    kinds = [a.kind for a in eng.observe_call("ana", 10, source_addr="10.0.0.1")]
    assert kinds == ["outside_hours"]
    assert [a.kind for a in eng.observe_call("ana", 10, source_addr="10.0.0.1")] == []
    assert [a.kind for a in eng.observe_call("ana", 10, source_addr="10.9.9.9")] == ["new_address"]
    for i in range(4):
        assert eng.observe_denial("bob", "policy_denied") == []
    burst = eng.observe_denial("bob", "dlp_blocked")
    assert [a.kind for a in burst] == ["denial_burst"] and "dlp_blocked" in burst[0].message
    stale = eng.observe_stale_token("cy", "k-123")
    assert stale[0].severity == "high" and "k-123" in stale[0].message
    pub = eng.active("cy")[0].public()
    assert set(pub) == {"id", "kind", "severity", "since", "message"}


def test_denials_spread_out_do_not_alert():
    clock = Clock(dt.datetime(2026, 11, 30, 10, tzinfo=ZoneInfo("UTC")))
    eng = AlertEngine(clock=clock)
    for _ in range(10):
        assert eng.observe_denial("bob", "policy_denied") == []
        clock.t += 30


@pytest.fixture
def listener():
    got, done = [], threading.Event()

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", got, done
    srv.shutdown()
    srv.server_close()


def test_webhook_receives_the_alert(listener):
    url, got, done = listener
    eng = AlertEngine(webhook_url=url)
    eng.observe_stale_token("dan", "k-1")
    assert done.wait(10)
    assert got[0]["kind"] == "stale_kernel_token" and got[0]["user"] == "dan" and got[0]["source"] == "jupyter-securellm"
