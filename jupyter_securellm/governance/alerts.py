"""Anomaly alerts: token spikes, use outside hours, a new source address, denial bursts, stale kernel tokens.

- **Spike:** per-user tokens per hour. The current hour is compared with that user's previous hours by a
  robust z-score, `0.6745 * (x - median) / MAD` (Iglewicz and Hoaglin; > 3.5 is an outlier). Median and
  MAD are not moved by the outliers themselves, unlike a mean and standard deviation. A floor on the MAD
  (10% of the median, at least 1 token) keeps a perfectly regular user from alerting on any change, and
  `spike_min_tokens` ignores small absolute numbers.
- **Outside hours:** a call outside `hours` (weekday set and [start, end) hours in the policy time zone).
- **New source address:** the first address of a user is learned; a later, unseen one alerts (low).
- **Denial burst:** `burst_count` denials (policy, DLP, egress, budget) within `burst_seconds`.
- **Stale kernel token:** a kernel token used after its kernel is gone (high: it was copied).

An alert stays active for `ttl_seconds` and goes to the audit log, the server log, `status`, metrics
and an optional webhook (POSTed off the caller's thread).
"""
from __future__ import annotations

import datetime as _dt
import json
import statistics
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

SEVERITY = {"spike": "high", "outside_hours": "medium", "new_address": "low", "denial_burst": "high",
            "stale_kernel_token": "high"}


@dataclass
class Alert:
    id: str
    kind: str
    severity: str
    since: str
    message: str
    user: str
    expires: float

    def public(self) -> dict:
        """The `status.alerts` item shape."""
        return {"id": self.id, "kind": self.kind, "severity": self.severity, "since": self.since,
                "message": self.message}


def robust_z(x: float, history: list[float], *, mad_floor_ratio: float = 0.1) -> float:
    med = statistics.median(history)
    mad = statistics.median(abs(h - med) for h in history)
    mad = max(mad, mad_floor_ratio * med, 1.0)
    return 0.6745 * (x - med) / mad


class AlertEngine:
    """Keeps per-user baselines in memory and raises alerts; `on_alert(alert)` is called for each new one."""

    def __init__(self, *, clock: Callable[[], float] = time.time, timezone: str = "UTC",
                 hours: dict | None = None, webhook_url: str = "", on_alert: Callable[[Alert], None] | None = None,
                 spike_z: float = 3.5, spike_min_tokens: int = 2000, baseline_hours: int = 168,
                 min_baseline_hours: int = 6, burst_count: int = 5, burst_seconds: float = 60.0,
                 ttl_seconds: float = 3600.0, log=None):
        self.clock = clock
        self.tz = ZoneInfo(timezone or "UTC")
        self.hours = hours  # {"start": 8, "end": 19, "weekdays": [1..5]} or None
        self.webhook_url = webhook_url
        self.on_alert = on_alert
        self.spike_z, self.spike_min_tokens = spike_z, spike_min_tokens
        self.baseline_hours, self.min_baseline_hours = baseline_hours, min_baseline_hours
        self.burst_count, self.burst_seconds = burst_count, burst_seconds
        self.ttl = ttl_seconds
        self.log = log
        self._lock = threading.Lock()
        self._hourly: dict[str, dict[int, int]] = defaultdict(dict)  # user -> {hour index: tokens}
        self._addresses: dict[str, set] = defaultdict(set)
        self._denials: dict[str, deque] = defaultdict(deque)
        self._active: dict[str, list[Alert]] = defaultdict(list)
        self.webhook_errors = 0

    # -- inputs ------------------------------------------------------------------------------------
    def observe_call(self, user: str, tokens: int, *, source_addr: str | None = None) -> list[Alert]:
        """A settled call: update the baseline, check spike, hours and address."""
        now = self.clock()
        hour = int(now // 3600)
        fired = []
        with self._lock:
            buckets = self._hourly[user]
            buckets[hour] = buckets.get(hour, 0) + int(tokens)
            for h in [h for h in buckets if h <= hour - self.baseline_hours]:
                del buckets[h]
            current = buckets[hour]
            history = [buckets.get(h, 0) for h in range(hour - self.baseline_hours, hour) if h in buckets]
        if len(history) >= self.min_baseline_hours and current >= self.spike_min_tokens:
            z = robust_z(current, history)
            if z > self.spike_z:
                fired += self._raise(user, "spike", f"{current} tokens this hour, against a usual "
                                                    f"{statistics.median(history):.0f} (robust z {z:.1f})")
        if self.hours and not self._within_hours(now):
            fired += self._raise(user, "outside_hours", "LLM use outside the configured hours")
        if source_addr:
            with self._lock:
                seen = self._addresses[user]
                new = bool(seen) and source_addr not in seen
                seen.add(source_addr)
            if new:
                fired += self._raise(user, "new_address", f"calls from a new source address {source_addr}")
        return fired

    def observe_denial(self, user: str, reason_type: str) -> list[Alert]:
        now = self.clock()
        with self._lock:
            q = self._denials[user]
            q.append(now)
            while q and q[0] <= now - self.burst_seconds:
                q.popleft()
            n = len(q)
        if n >= self.burst_count:
            return self._raise(user, "denial_burst", f"{n} refused calls within {self.burst_seconds:.0f} s "
                                                     f"(last: {reason_type})")
        return []

    def observe_stale_token(self, user: str, kernel_id: str | None) -> list[Alert]:
        return self._raise(user, "stale_kernel_token", f"a token of kernel {kernel_id or '?'} was used after its "
                                                       "kernel was gone (copied token?)")

    # -- state ---------------------------------------------------------------------------------------
    def active(self, user: str | None = None) -> list[Alert]:
        now = self.clock()
        with self._lock:
            for u in list(self._active):
                self._active[u] = [a for a in self._active[u] if a.expires > now]
            if user is not None:
                return list(self._active.get(user, []))
            return [a for lst in self._active.values() for a in lst]

    def clear(self, user: str) -> None:
        with self._lock:
            self._active.pop(user, None)

    def _within_hours(self, now: float) -> bool:
        t = _dt.datetime.fromtimestamp(now, self.tz)
        days = self.hours.get("weekdays", [1, 2, 3, 4, 5])
        return t.isoweekday() in days and self.hours.get("start", 0) <= t.hour < self.hours.get("end", 24)

    def _raise(self, user: str, kind: str, message: str) -> list[Alert]:
        now = self.clock()
        with self._lock:
            for a in self._active[user]:
                if a.kind == kind and a.expires > now:
                    a.expires = now + self.ttl  # still going on: extend, do not repeat
                    return []
            since = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
            alert = Alert(uuid.uuid4().hex[:12], kind, SEVERITY[kind], since, message, user, now + self.ttl)
            self._active[user].append(alert)
        if self.log:
            self.log.warning("SecureLLM: alert %s (%s) for user %s: %s", kind, alert.severity, user, message)
        if self.on_alert:
            try:
                self.on_alert(alert)
            except Exception:  # noqa: BLE001 - a sink must not break the call path
                if self.log:
                    self.log.exception("SecureLLM: alert sink failed")
        if self.webhook_url:
            threading.Thread(target=self._post, args=(alert,), name="securellm-alert-webhook", daemon=True).start()
        return [alert]

    def _post(self, alert: Alert) -> None:
        import urllib.request

        body = json.dumps({"source": "jupyter-securellm", "user": alert.user, **alert.public()}).encode()
        req = urllib.request.Request(self.webhook_url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()
        except Exception as exc:  # noqa: BLE001
            self.webhook_errors += 1
            if self.log:
                self.log.error("SecureLLM: alert webhook failed: %s", type(exc).__name__)


def alerts_as_dicts(alerts: Iterable[Alert]) -> list[dict]:
    return [a.public() for a in alerts]


__all__ = ["Alert", "AlertEngine", "robust_z", "alerts_as_dicts", "asdict"]
