"""The governance governor: Rego policy, budgets, the audit log, alerts and metrics in the broker.

`governance/` is pure library code; this module adapts it to the broker's plug-in points
(`server/governor.py`): `authorize` asks the policy, `reserve` checks that the audit log is writable
and reserves the budget, and `record` settles the reservation and writes the call's audit record.
The broker awaits `record` before it answers, so an acknowledged call's record is durable.

It is always on (`SecureLLM` puts it first in the governor list): with no configuration it applies the
shipped default policy (the configured models, through allowlisted hosts), keeps no budget, and
writes no audit log (`audit_log_path` empty). docs/policy.md, docs/budgets.md, docs/audit.md.
"""
from __future__ import annotations

import math
from typing import Any

from ..governance.service import Context, Governance, Refused
from .errors import BrokerError
from .governor import Call, Governor, Outcome, Usage

#: Refusals raised before anything reached the provider: their reservations cost nothing.
NOT_SENT = {"invalid_request", "not_found", "policy_denied", "dlp_blocked", "egress_denied", "budget_exhausted",
            "rate_limited", "vault_unavailable", "audit_unavailable", "unauthorized"}


def build_governance(app, log=None) -> Governance:
    """A `Governance` from the `c.SecureLLM.*` governance traits of `app` (the ExtensionApp)."""
    from ..governance.alerts import AlertEngine
    from ..governance.audit import AuditLog, Fingerprinter, TransitSigner, load_hmac_key_file
    from ..governance.budget import BudgetLedger, default_database_url
    from ..governance.policy import PolicyEngine

    tz = app.policy_timezone or "UTC"
    policy = PolicyEngine(app.policy_paths, log=log)
    ledger = None
    if app.budgets:
        url = app.database_url or default_database_url(_runtime_dir(app))
        ledger = BudgetLedger(url, app.budgets, timezone=tz, lease_seconds=app.budget_lease_seconds)
    audit = None
    if app.audit_log_path:
        fp = None
        if app.audit_hmac_key_path:
            fp = Fingerprinter(load_hmac_key_file(app.audit_hmac_key_path))
        elif app.audit_hmac_vault_path:
            fp = Fingerprinter(app.vault.read_secret(app.audit_hmac_vault_path, "key", user=app.owner).encode())
        signer = None
        if app.audit_transit_key:
            signer = TransitSigner(key=app.audit_transit_key, mount=app.audit_transit_mount, run=app.vault._call)
        audit = AuditLog(app.audit_log_path, fingerprinter=fp, rotate_bytes=app.audit_rotate_bytes, signer=signer,
                         checkpoint_every=app.audit_checkpoint_every,
                         checkpoint_seconds=app.audit_checkpoint_seconds, log=log)
    alerts = AlertEngine(timezone=tz, hours=app.alert_hours or None, webhook_url=app.alert_webhook_url, log=log)
    models = {alias: {"model": _get(cfg, "model")} for alias, cfg in app.models.items()}
    return Governance(policy=policy, ledger=ledger, audit=audit, alerts=alerts, models=models, prices=app.prices,
                      timezone=tz, log=log, fingerprint=audit.fingerprint if audit else None)


def _get(cfg, key):
    return cfg.get(key) if isinstance(cfg, dict) else getattr(cfg, key, None)


def _runtime_dir(app) -> str:
    sa = getattr(app, "serverapp", None)
    if sa is not None and getattr(sa, "runtime_dir", None):
        return sa.runtime_dir
    from jupyter_core.paths import jupyter_runtime_dir

    return jupyter_runtime_dir()


def _error(r: Refused) -> BrokerError:
    return BrokerError(r.type, r.message, **r.extra)


class GovernanceGovernor(Governor):
    """Policy (authorize), budget and audit health (reserve), settlement and the audit record (record)."""

    def __init__(self, governance: Governance | None = None, **kwargs):
        super().__init__(**kwargs)
        self.gov = governance or build_governance(self.parent, log=self.log)
        self._tickets: dict[int, Any] = {}

    # -- facts ------------------------------------------------------------------------------------
    def context(self, call: Call) -> Context:
        caller = call.caller
        base = dict(user=caller.user, groups=tuple(getattr(caller, "groups", ()) or ()), via=caller.via,
                    kernel_id=caller.kernel_id, source_addr=getattr(caller, "source_addr", None),
                    notebook_path=getattr(caller, "notebook_path", None),
                    declared_notebook=getattr(caller, "declared_notebook", None))
        if call.action == "chat":
            req = call.request
            cfg = req.model
            from .egress import host_allowed, provider_of

            host, port = cfg.endpoint
            params = req.params or {}
            allowed = getattr(self.parent, "allowed_hosts", None)
            return Context(action="chat", model=cfg.alias, litellm_model=cfg.model, provider=provider_of(cfg.model),
                           host=host, host_allowed=host_allowed(host, port, allowed) if allowed is not None else None,
                           max_tokens=params.get("max_tokens") or params.get("max_completion_tokens"),
                           stream=bool(req.stream), tools=len(params.get("tools") or []),
                           prompt_chars=_prompt_chars(req.messages), **base)
        if call.action == "secret":
            return Context(action="secrets.get", secret_path=(call.request or {}).get("path"), **base)
        return Context(action=call.action, **base)

    # -- the governor points ------------------------------------------------------------------------
    async def authorize(self, call: Call) -> None:
        try:
            ticket = await self.gov.authorize(self.context(call))
        except Refused as r:
            raise _error(r) from None
        if call.action in ("chat", "secret"):
            self._tickets[id(call.request)] = ticket

    async def reserve(self, call: Call):
        ticket = self._tickets.get(id(call.request))
        if ticket is None:
            return None
        try:
            await self.gov.reserve(ticket)
        except Refused as r:
            raise _error(r) from None
        return ticket

    async def settle(self, call: Call, reservation, usage: Usage | None) -> None:
        # the audit record needs the outcome too: both happen in record()
        if reservation is not None:
            reservation.usage = usage

    async def record(self, call: Call, outcome: Outcome) -> None:
        ticket = self._tickets.pop(id(call.request), None)
        if ticket is None:
            return
        usage = outcome.usage or getattr(ticket, "usage", None)
        tin, tout = _tokens(usage, ticket.ctx.prompt_chars)
        err = outcome.error_type
        sent = call.action == "chat" and err not in NOT_SENT
        try:
            await self.gov.finish(ticket, status="ok" if err is None else err, tokens_in=tin if sent else 0,
                                  tokens_out=tout if sent else 0, error_type=err, sent=sent,
                                  prompt=_prompt_text(call) if self.gov.fingerprint else None)
        except Refused as r:
            raise _error(r) from None

    # -- status and metrics ---------------------------------------------------------------------------
    async def status_fields(self, caller) -> dict:
        """`budget` and `alerts` for REST `status`."""
        import asyncio

        groups = tuple(getattr(caller, "groups", ()) or ())
        return await asyncio.get_running_loop().run_in_executor(
            self.gov.executor, self.gov.status_fields, caller.user, groups)

    def stale_token(self, user: str, kernel_id: str | None) -> None:
        self.gov.stale_token(user, kernel_id)

    def close(self) -> None:
        self.gov.close()


def _prompt_chars(messages) -> int:
    """UTF-8 bytes of the prompt's text (an upper bound of its tokens; see budget.estimate_tokens)."""
    n = 0
    for m in messages or ():
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, str):
            n += len(c.encode("utf-8", "surrogatepass"))
        elif isinstance(c, list):
            n += sum(len(p["text"].encode("utf-8", "surrogatepass")) for p in c
                     if isinstance(p, dict) and isinstance(p.get("text"), str))
    return n


def _prompt_text(call: Call) -> str:
    return "\n".join(m.get("content") for m in call.request.messages
                     if isinstance(m, dict) and isinstance(m.get("content"), str))


def _tokens(usage: Usage | None, prompt_chars: int) -> tuple[int, int]:
    """(input, output) tokens: the provider's figures, else an estimate from what was streamed."""
    if usage is None:
        return 0, 0
    tin = usage.prompt_tokens
    tout = usage.completion_tokens
    streamed = (usage.raw or {}).get("streamed_chars") if isinstance(usage.raw, dict) else None
    if tout is None and streamed is not None:
        tout = math.ceil(streamed / 4)
    if tin is None and (tout or streamed is not None):
        tin = math.ceil(prompt_chars / 4)
    return int(tin or 0), int(tout or 0)
