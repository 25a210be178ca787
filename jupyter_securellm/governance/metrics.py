"""Prometheus metrics (prometheus-client), one registry per server so tests and servers do not mix.

Served by `GET /jupyter-securellm/v1/metrics` (authenticated) in the Prometheus text format.
Labels are bounded: model aliases, actions, error types and denial kinds, never users or prompts.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        r = self.registry = CollectorRegistry(auto_describe=True)
        p = "jupyter_securellm_"
        self.calls = Counter(p + "calls", "Broker actions by action, model and outcome status",
                             ["action", "model", "status"], registry=r)
        self.tokens = Counter(p + "tokens", "Tokens used, by model and direction (input|output)",
                              ["model", "direction"], registry=r)
        self.cost = Counter(p + "cost_usd", "Cost in USD from the price map, by model", ["model"], registry=r)
        self.unpriced = Counter(p + "unpriced_calls", "Calls whose model has no known price", ["model"], registry=r)
        self.denials = Counter(p + "denials", "Refused actions by reason type "
                                              "(policy_denied, budget_exhausted, rate_limited, dlp_blocked, ...)",
                               ["reason"], registry=r)
        self.latency = Histogram(p + "latency_seconds", "Broker action latency", ["action"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.decision = Histogram(p + "policy_decision_seconds", "Rego decision time",
                                  buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.05),
                                  registry=r)
        self.vault_errors = Counter(p + "vault_errors", "Vault errors seen by the broker", registry=r)
        self.provider_errors = Counter(p + "provider_errors", "Provider errors by type", ["type"], registry=r)
        self.alerts_active = Gauge(p + "alerts_active", "Active anomaly alerts by kind", ["kind"], registry=r)
        self.alerts_total = Counter(p + "alerts", "Alerts raised by kind", ["kind"], registry=r)
        self.audit_records = Counter(p + "audit_records", "Audit records made durable", registry=r)
        self.audit_errors = Counter(p + "audit_errors", "Audit write failures (calls refused)", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
