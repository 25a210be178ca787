"""`Governance`: policy, budget, audit, alerts and metrics behind three calls the broker makes.

    ticket = await gov.admit(ctx)                  # policy, then budget reservation (raises Refused)
    await gov.finish(ticket, usage=..., status=...)  # settle, audit record durable, alerts, metrics
    await gov.refused(ctx, error_type, message)    # any other refusal (DLP, egress...): audit + alerts

Order and guarantees (docs/policy.md, docs/budgets.md, docs/audit.md):
- the policy decides every action first; a deny is audited and answered 403 `policy_denied`;
- a chat reserves its estimate before the call (429 `budget_exhausted` / `rate_limited` with
  `resets_at`) and settles with the provider's usage after it, or with what was streamed;
- before a chat leaves, the audit log must be writable (else the call is refused: fail closed); the
  call's record is durable before `finish` returns, i.e. before the broker acknowledges the call.

Pure library code: the server adapts its Caller and errors to `Context` and `Refused`.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from .alerts import AlertEngine
from .audit import AuditLog, AuditUnavailable
from .budget import BudgetError, BudgetLedger, estimate_tokens
from .metrics import Metrics
from .policy import PolicyEngine, build_input
from .prices import price_of


class Refused(Exception):
    """A governance refusal: `type` is a REST error type (policy_denied, budget_exhausted, rate_limited,
    audit_unavailable); `extra` goes into the error body (e.g. `resets_at`, `reasons`)."""

    def __init__(self, type_: str, message: str, **extra):
        super().__init__(message)
        self.type = type_
        self.message = message
        self.extra = {k: v for k, v in extra.items() if v is not None}


@dataclass
class Context:
    """Everything the policy and the audit record need about one action (no prompt, no answer)."""

    user: str
    action: str
    groups: tuple = ()
    via: str = "browser"
    kernel_id: str | None = None
    notebook_path: str | None = None
    declared_notebook: str | None = None  # tier 3: the user's server's word for it; audit only, never policy input
    model: str | None = None          # alias
    litellm_model: str | None = None
    provider: str | None = None
    host: str | None = None
    host_allowed: bool | None = None
    max_tokens: int | None = None
    stream: bool = False
    tools: int = 0
    prompt_chars: int = 0
    source_addr: str | None = None
    secret_path: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Ticket:
    ctx: Context
    started: float
    reservation: Any = None
    price: Any = None
    reasons: tuple = ()
    recorded: bool = False  # the decision is already in the audit log (a refusal): record() adds nothing


class Governance:
    def __init__(self, *, policy: PolicyEngine, ledger: BudgetLedger | None = None, audit: AuditLog | None = None,
                 alerts: AlertEngine | None = None, metrics: Metrics | None = None, models: dict | None = None,
                 prices: dict | None = None, timezone: str = "UTC", log=None,
                 executor: ThreadPoolExecutor | None = None, fingerprint: Callable[[str], str] | None = None,
                 clock: Callable[[], float] = time.time):
        self.policy = policy
        self.ledger = ledger
        self.audit = audit
        self.alerts = alerts or AlertEngine(clock=clock, timezone=timezone, log=log)
        self.metrics = metrics or Metrics()
        self.models = models or {}
        self.prices = prices or {}
        self.timezone = timezone
        self.log = log
        self.clock = clock
        self.executor = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="securellm-gov")
        self.fingerprint = fingerprint or (audit.fingerprint if audit is not None else None)
        self._unpriced_warned: set[str] = set()
        prev = self.alerts.on_alert
        self.alerts.on_alert = lambda a: (self._on_alert(a), prev(a) if prev else None)

    async def _run(self, fn, *args, **kw):
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args, **kw))

    # -- facts ------------------------------------------------------------------------------------
    def input_for(self, ctx: Context, usage: dict | None = None) -> dict:
        return build_input(
            user=ctx.user, action=ctx.action, groups=ctx.groups, via=ctx.via, kernel_id=ctx.kernel_id,
            notebook_path=ctx.notebook_path, model=ctx.model, provider=ctx.provider, host=ctx.host,
            host_allowed=ctx.host_allowed, models=self.models, secret_path=ctx.secret_path,
            request={"max_tokens": ctx.max_tokens, "stream": ctx.stream, "tools": ctx.tools},
            usage=usage, alerts=[a.public() for a in self.alerts.active(ctx.user)],
            now_ns=int(self.clock() * 1e9), timezone=self.timezone, source_addr=ctx.source_addr)

    def status_fields(self, user: str, groups=()) -> dict:
        """`status.budget` and `status.alerts` (synchronous: call it from a worker thread)."""
        budget = self.ledger.status(user, groups) if self.ledger is not None else None
        return {"budget": budget, "alerts": [a.public() for a in self.alerts.active(user)]}

    # -- the three calls ---------------------------------------------------------------------------
    async def admit(self, ctx: Context) -> Ticket:
        """Policy, then (chat) audit health and a budget reservation. Raises Refused."""
        ticket = await self.authorize(ctx)
        await self.reserve(ticket)
        return ticket

    async def authorize(self, ctx: Context) -> Ticket:
        """The policy decision for any action; a deny is audited (durably) and raised as Refused."""
        started = time.perf_counter()
        usage = None
        if self.ledger is not None and ctx.action == "chat" and getattr(self.policy, "uses_usage", True):
            usage = await self._run(self.ledger.usage, ctx.user)
        decision = self.policy.decide(self.input_for(ctx, usage))
        self.metrics.decision.observe(decision.elapsed_ms / 1e3)
        if not decision.allowed:
            msg = f"Denied by policy: {decision.sentence()}."
            await self.refused(ctx, "policy_denied", msg, reasons=list(decision.reasons), durable=True)
            raise Refused("policy_denied", msg, reasons=list(decision.reasons))
        ticket = Ticket(ctx, started, reasons=decision.reasons)
        if ctx.action in ("models", "status"):
            self.metrics.calls.labels(ctx.action, "", "ok").inc()
        return ticket

    async def reserve(self, ticket: Ticket) -> None:
        """For a chat: refuse if the audit log is unwritable (fail closed), then reserve the estimate."""
        ctx = ticket.ctx
        if ctx.action != "chat":
            return
        if self.audit is not None and self.audit.error:
            self.metrics.denials.labels("audit_unavailable").inc()
            raise Refused("audit_unavailable", self.audit.error)
        cfg = self.models.get(ctx.model or "", {})
        if not isinstance(cfg, dict):
            cfg = {"model": getattr(cfg, "model", "")}
        ticket.price = price_of(ctx.litellm_model or cfg.get("model", ctx.model or ""), ctx.model, self.prices)
        if self.ledger is not None:
            tin, tout = estimate_tokens(ctx.prompt_chars, ctx.max_tokens)
            est_usd = ticket.price.cost(tin, tout) if ticket.price else None
            try:
                ticket.reservation = await self._run(
                    self.ledger.reserve, ctx.user, ctx.groups, est_tokens=tin + tout, est_usd=est_usd,
                    model=ctx.model or "")
            except BudgetError as exc:
                ticket.recorded = True  # one decision, one record: the deny below is this request's only record
                await self.refused(ctx, exc.type, exc.message, resets_at=exc.resets_at, durable=True)
                raise Refused(exc.type, exc.message, resets_at=exc.resets_at) from None
        if self.audit is not None:  # the decision record; the call record (awaited) makes both durable
            self.audit.submit(self._record(ctx, "decision", decision="allow"))

    async def settle(self, ticket: Ticket, *, tokens_in: int = 0, tokens_out: int = 0, sent: bool = True) -> None:
        """Settle the reservation with what was used (release it if nothing was sent)."""
        if self.ledger is None or ticket.reservation is None:
            return
        res, ticket.reservation = ticket.reservation, None
        if sent:
            cost = ticket.price.cost(tokens_in, tokens_out) if ticket.price else None
            await self._run(self.ledger.settle, res, tokens=tokens_in + tokens_out, usd=cost)
        else:
            await self._run(self.ledger.release, res)

    async def finish(self, ticket: Ticket, *, status: str = "ok", tokens_in: int = 0, tokens_out: int = 0,
                     prompt: str | None = None, answer: str | None = None, error_type: str | None = None,
                     sent: bool = True) -> None:
        """Settle and record (see `record`), concurrently: the ledger and the audit log are separate disks' worth
        of waiting, and neither depends on the other."""
        settled = asyncio.ensure_future(self.settle(ticket, tokens_in=tokens_in, tokens_out=tokens_out, sent=sent))
        try:
            await self.record(ticket, status=status, tokens_in=tokens_in, tokens_out=tokens_out, prompt=prompt,
                              answer=answer, error_type=error_type, sent=sent)
        finally:
            await settled

    async def record(self, ticket: Ticket, *, status: str = "ok", tokens_in: int = 0, tokens_out: int = 0,
                     prompt: str | None = None, answer: str | None = None, error_type: str | None = None,
                     sent: bool = True) -> None:
        """Write the call record (durable before returning), feed alerts and metrics.

        Raises Refused('audit_unavailable') if the record could not be made durable: the broker then
        answers an error instead of acknowledging the call. A ticket whose refusal `reserve` already
        recorded (budget, rate limit) gets nothing more: one decision, one audit record, one count.
        """
        if ticket.recorded:
            return
        ticket.recorded = True
        ctx = ticket.ctx
        latency = time.perf_counter() - ticket.started
        cost = ticket.price.cost(tokens_in, tokens_out) if ticket.price else None
        if ticket.price is None and ctx.action == "chat" and sent:
            self.metrics.unpriced.labels(ctx.model or "").inc()
            if ctx.model not in self._unpriced_warned and self.log:
                self._unpriced_warned.add(ctx.model)
                self.log.warning("SecureLLM: no price known for model %r: its cost is reported as unknown; "
                                 "add it to c.SecureLLM.prices", ctx.model)
        m = self.metrics
        m.calls.labels(ctx.action, ctx.model or "", status).inc()
        m.latency.labels(ctx.action).observe(latency)
        if tokens_in or tokens_out:
            m.tokens.labels(ctx.model or "", "input").inc(tokens_in)
            m.tokens.labels(ctx.model or "", "output").inc(tokens_out)
        if cost:
            m.cost.labels(ctx.model or "").inc(cost)
        if error_type:
            if error_type.startswith("vault"):
                m.vault_errors.inc()
            elif error_type.startswith("provider") or error_type == "timeout":
                m.provider_errors.labels(error_type).inc()
            elif error_type in ("dlp_blocked", "egress_denied"):
                m.denials.labels(error_type).inc()
                self.alerts.observe_denial(ctx.user, error_type)
        refused = bool(error_type) and not sent  # refused after the policy allowed it (DLP, egress, Vault...)
        rec = self._record(ctx, "call" if ctx.action == "chat" and not refused else "decision",
                           decision="deny" if refused else "allow", status=status, error_type=error_type)
        if ctx.action == "chat" and not refused:
            rec.update(tokens_in=tokens_in, tokens_out=tokens_out, price_known=ticket.price is not None,
                       latency_ms=round(latency * 1e3, 3))
            if cost is not None:
                rec["cost_usd"] = round(cost, 8)
        if self.fingerprint is not None:
            if prompt is not None:
                rec["prompt_hmac"] = self.fingerprint(prompt)
            if answer is not None:
                rec["answer_hmac"] = self.fingerprint(answer)
        if sent and status == "ok" and ctx.action == "chat":
            self.alerts.observe_call(ctx.user, tokens_in + tokens_out, source_addr=ctx.source_addr)
        await self._audit_durable(rec)

    async def refused(self, ctx: Context, error_type: str, message: str, *, durable: bool = False, **extra) -> None:
        """Audit and count a refusal (policy, budget, DLP, egress...) and feed the denial-burst alert."""
        self.metrics.denials.labels(error_type).inc()
        self.metrics.calls.labels(ctx.action, ctx.model or "", error_type).inc()
        self.alerts.observe_denial(ctx.user, error_type)
        rec = self._record(ctx, "decision", decision="deny", error_type=error_type, message=message,
                           reasons=extra.get("reasons"), resets_at=extra.get("resets_at"))
        if self.audit is None:
            return
        if durable:
            try:
                await self._audit_durable(rec)
            except Refused:
                pass  # already refused; the refusal itself is what the user sees
        else:
            self.audit.submit(rec)

    def stale_token(self, user: str, kernel_id: str | None) -> None:
        self.alerts.observe_stale_token(user, kernel_id)

    # -- helpers ------------------------------------------------------------------------------------
    def _record(self, ctx: Context, type_: str, **fields) -> dict:
        rec = {"type": type_, "request_id": ctx.request_id, "user": ctx.user, "via": ctx.via,
               "kernel_id": ctx.kernel_id, "notebook": ctx.notebook_path, "action": ctx.action,
               "model": ctx.model, "provider_host": ctx.host, "source_addr": ctx.source_addr}
        if ctx.notebook_path is None and ctx.declared_notebook:
            rec["notebook"], rec["notebook_declared"] = ctx.declared_notebook, True  # not vouched for by the broker
        if ctx.secret_path:
            rec["secret_path"] = ctx.secret_path
        rec.update({k: v for k, v in fields.items() if v is not None})
        return rec

    async def _audit_durable(self, rec: dict) -> None:
        if self.audit is None:
            return
        try:
            await self.audit.awrite(rec)
            self.metrics.audit_records.inc()
        except AuditUnavailable as exc:
            self.metrics.audit_errors.inc()
            raise Refused("audit_unavailable", str(exc)) from None

    def _on_alert(self, alert) -> None:
        self.metrics.alerts_total.labels(alert.kind).inc()
        for kind in ("spike", "outside_hours", "new_address", "denial_burst", "stale_kernel_token"):
            self.metrics.alerts_active.labels(kind).set(sum(1 for a in self.alerts.active() if a.kind == kind))
        if self.audit is not None:
            self.audit.submit({"type": "alert", "user": alert.user, "alert_id": alert.id, "kind": alert.kind,
                               "severity": alert.severity, "message": alert.message})

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()
        if self.ledger is not None:
            self.ledger.close()
        self.executor.shutdown(wait=False)
