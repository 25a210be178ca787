"""Broker errors with the REST contract's types, so every failure maps to one JSON shape.

Messages are one actionable sentence and never carry secret values: they are built by us,
not copied from provider or Vault exceptions (those may quote keys or tokens).
"""
from __future__ import annotations

STATUS = {
    "invalid_request": 400,
    "unauthorized": 401,
    "policy_denied": 403,
    "egress_denied": 403,
    "not_found": 404,
    "dlp_blocked": 422,
    "budget_exhausted": 429,
    "rate_limited": 429,
    "provider_error": 502,
    "provider_auth": 502,
    "vault_unavailable": 503,
    "broker_unavailable": 503,
    "timeout": 504,
}


class BrokerError(Exception):
    """An error the broker reports to its caller as `{"error": {"type", "message"}}`."""

    def __init__(self, type_: str, message: str, **extra):
        if type_ not in STATUS:
            raise ValueError(f"unknown broker error type {type_!r}")
        super().__init__(message)
        self.type = type_
        self.message = message
        self.extra = extra

    @property
    def status(self) -> int:
        return STATUS[self.type]

    def to_json(self) -> dict:
        body = {"type": self.type, "message": self.message}
        body.update(self.extra)
        return {"error": body}
