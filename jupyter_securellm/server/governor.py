"""The broker's plug-in points: governors that authorize, reserve, settle and record every call.

The broker runs a fixed order of security checks (docs/architecture.md). Policy, budgets and the
audit log slot into that order through this one interface, instead of edits to the broker:

    authorize(call)                       before anything leaves the server (after validation,
                                          before DLP, Vault and the provider); raise BrokerError
                                          (`policy_denied`, 403) to refuse
    reserve(call) -> token                right before the provider call; raise BrokerError
                                          (`budget_exhausted` / `rate_limited`, 429) to refuse
    settle(call, token, usage)            after the call (also after a failure or a client that
                                          went away: usage is then None or partial)
    record(call, outcome)                 last, always, once per call: the audit record

A `Call` says who asked for what; an `Outcome` says how it ended. Governors run in list order for
authorize/reserve and in reverse order for settle/record (like nested context managers). If a
reserve fails, the governors that already reserved are settled with usage None. Exceptions from
settle/record are logged and do not change the answer already given. The default, `Governor`
itself, allows everything and records nothing.

Configure with `c.SecureLLM.governor_classes` (a list; each class is built as `cls(parent=app)`,
so it can take its own traitlets config and has `self.log`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from traitlets.config import LoggingConfigurable


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: a kernel (by capability token) or a browser user (Jupyter auth).

    On a JupyterHub, `user` and `groups` are the Hub's (jupyter_securellm.hub.identity): the one
    place policy (`input.groups`) and budget groups read them from. Never from the request body.
    """

    user: str
    kernel_id: str | None = None
    groups: tuple[str, ...] = ()
    source_addr: str | None = None  # the client address (governance: the new-address alert, input.source_addr)
    notebook_path: str | None = None  # the Jupyter session's path for a kernel caller (input.notebook_path, audit)
    # tier 3: the notebook path the user's server declared (X-SecureLLM-Notebook). That server runs as the
    # user, so the path is the user's word: recorded in the audit log, never policy input.
    declared_notebook: str | None = None

    @property
    def via(self) -> str:
        return "kernel" if self.kernel_id else "browser"


@dataclass(frozen=True, slots=True)
class Call:
    """One broker action. `action` is "chat" or "secret"; `request` is a ChatRequest or the secret's
    {"path", "key"}. `model` is the alias for chats. Never holds a key or a secret value."""

    caller: Caller
    action: str
    request: Any
    model: str | None = None
    stream: bool = False
    findings: tuple = ()  # prompt DLP findings (rule id + fingerprint, never values), redact mode


@dataclass(frozen=True, slots=True)
class Usage:
    """What a call consumed, as the provider reported it (or None fields when it did not)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call ended: `error_type` is None on success, else the BrokerError type."""

    error_type: str | None = None
    usage: Usage | None = None
    status: int = 200


class Governor(LoggingConfigurable):
    """Allows everything, reserves nothing, records nothing. Subclass and override what you need."""

    async def authorize(self, call: Call) -> None:
        return None

    async def reserve(self, call: Call) -> Any:
        return None

    async def settle(self, call: Call, reservation: Any, usage: Usage | None) -> None:
        return None

    async def record(self, call: Call, outcome: Outcome) -> None:
        return None


def usage_of(answer: Mapping | None) -> Usage | None:
    """The `usage` block of an OpenAI-shaped answer or final stream chunk, as a Usage."""
    u = (answer or {}).get("usage") if isinstance(answer, Mapping) else None
    if not isinstance(u, Mapping):
        return None
    def num(k):
        v = u.get(k)
        return v if isinstance(v, int) and not isinstance(v, bool) else None
    return Usage(num("prompt_tokens"), num("completion_tokens"), num("total_tokens"), dict(u))
