"""Broker errors with the REST contract's types, so every failure maps to one JSON shape.

The types and their HTTP status are the protocol's (`jupyter_securellm.protocol.ERROR_STATUS`),
shared with the kernel's client. Messages are one actionable sentence and never carry secret
values: they are built by us, not copied from provider or Vault exceptions (those may quote keys).
"""
from __future__ import annotations

from ..protocol import ERROR_STATUS, ProtocolError

STATUS = ERROR_STATUS


class BrokerError(ProtocolError):
    """An error the broker reports to its caller as `{"error": {"type", "message"}}`."""
