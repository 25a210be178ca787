"""Budgets and rate limits: reserve before the call, settle after it, with a lease.

How overspending is prevented under concurrency (many calls, many servers): a reservation is one
transaction that (1) takes an exclusive lock for the user (PostgreSQL: `SELECT ... FOR UPDATE` on the
user's row in `securellm_budget_subjects`; SQLite: `BEGIN IMMEDIATE`, the database write lock),
(2) sums what is used (settled calls at their real cost, live reservations at their estimate) and
(3) inserts the new reservation only if `used + estimate <= limit`. Reservations are therefore
serialized per user, and the sum of live estimates never exceeds the limit: the only overspend is a
call whose real usage exceeds its estimate, i.e. at most one request's estimate beyond the limit.

The opposite bug (users blocked by spend that never happened, as with leaked reservations in
LiteLLM's proxy) is prevented by a lease: a reservation counts only until `lease_until`. A server
that crashes mid-call never settles, and its reservation simply stops counting when the lease ends.

State goes through SQLAlchemy; the schema is created and upgraded by the Alembic migrations shipped
in `governance/migrations/`. SQLite under the runtime dir is the default; `database_url` selects
PostgreSQL for many servers sharing budgets.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

import sqlalchemy as sa

DIMENSIONS = ("daily_tokens", "monthly_tokens", "daily_usd", "monthly_usd", "rpm")
PERIOD = {"daily_tokens": "day", "monthly_tokens": "month", "daily_usd": "day", "monthly_usd": "month",
          "rpm": "minute"}

metadata = sa.MetaData()
subjects = sa.Table(
    "securellm_budget_subjects", metadata,
    sa.Column("user", sa.String(255), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
)
calls = sa.Table(
    "securellm_budget_calls", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("model", sa.String(255), nullable=False, server_default=""),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("est_tokens", sa.Integer, nullable=False),
    sa.Column("est_usd", sa.Float, nullable=False),
    sa.Column("tokens", sa.Integer, nullable=True),
    sa.Column("usd", sa.Float, nullable=True),
    sa.Column("server", sa.String(255), nullable=False, server_default=""),
    sa.Index("ix_securellm_calls_user_month", "user", "month"),
    sa.Index("ix_securellm_calls_user_created", "user", "created_at"),
)

MIGRATIONS = Path(__file__).with_name("migrations")


class BudgetError(Exception):
    """A refused call: `type` is `budget_exhausted` or `rate_limited` (both 429), with `resets_at`."""

    def __init__(self, type_: str, message: str, resets_at: str | None = None, dimension: str | None = None):
        super().__init__(message)
        self.type = type_
        self.message = message
        self.resets_at = resets_at
        self.dimension = dimension


class BudgetConfigError(ValueError):
    """`c.SecureLLM.budgets` cannot work; the message names the entry."""


def validate_budgets(budgets: dict) -> None:
    if not isinstance(budgets, dict):
        raise BudgetConfigError("budgets must be a dict with 'default', 'groups' and/or 'users'")
    extra = set(budgets) - {"default", "groups", "users"}
    if extra:
        raise BudgetConfigError(f"budgets: unknown key(s) {sorted(extra)}; use 'default', 'groups', 'users'")

    def check(where, entry):
        if not isinstance(entry, dict):
            raise BudgetConfigError(f"{where} must be a dict of {', '.join(DIMENSIONS)}")
        for k, v in entry.items():
            if k not in DIMENSIONS:
                raise BudgetConfigError(f"{where}: unknown dimension {k!r}; allowed: {', '.join(DIMENSIONS)}")
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise BudgetConfigError(f"{where}[{k!r}] must be a number >= 0 (or None for unlimited)")

    if "default" in budgets:
        check("budgets['default']", budgets["default"])
    for section in ("groups", "users"):
        sec = budgets.get(section, {})
        if not isinstance(sec, dict):
            raise BudgetConfigError(f"budgets[{section!r}] must be a dict of name -> limits")
        for name, entry in sec.items():
            check(f"budgets[{section!r}][{name!r}]", entry)


def effective_limits(budgets: dict, user: str, groups: Iterable[str] = ()) -> dict:
    """The limits that apply to `user`: user entry > group entries > default, per dimension.

    Several groups: for each dimension, the most generous group wins (None, unlimited, beats any
    number). A dimension a group does not set is not decided by that group.
    """
    out = dict((budgets or {}).get("default") or {})
    group_cfg = (budgets or {}).get("groups") or {}
    merged: dict = {}
    for g in groups:
        for k, v in (group_cfg.get(g) or {}).items():
            if k not in merged:
                merged[k] = v
            elif merged[k] is not None:
                merged[k] = None if v is None else max(merged[k], v)
    out.update(merged)
    out.update(((budgets or {}).get("users") or {}).get(user) or {})
    return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class Reservation:
    id: str
    user: str
    est_tokens: int
    est_usd: float
    lease_until: float


def estimate_tokens(prompt_bytes: int, max_tokens: int | None, default_max_tokens: int = 1024) -> tuple[int, int]:
    """(input, output) tokens to reserve: an upper bound, not a guess.

    A tokenizer's token covers at least one byte, so the prompt's UTF-8 size bounds its tokens, and
    `max_tokens` bounds the answer. Reserving the bound means settled usage never exceeds what was
    reserved, so a budget is never overspent (a guess such as 4 characters per token was passed by 2x in
    the two-server test with short words). Without `max_tokens` the answer is counted as
    `default_max_tokens`, which is not a bound: require max_tokens by policy for a hard cap
    (examples/policies/max_tokens.rego).
    """
    return max(1, int(prompt_bytes)), int(max_tokens if max_tokens else default_max_tokens)


def default_database_url(runtime_dir: str) -> str:
    return "sqlite:///" + str(Path(runtime_dir) / "jupyter_securellm" / "budget.sqlite")


def make_engine(url: str) -> sa.Engine:
    """An engine whose transactions take the write lock where the database needs it (SQLite)."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                                  poolclass=sa.pool.QueuePool, pool_size=8, max_overflow=8)

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _rec):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest Alembic revision (serialized across servers on PostgreSQL)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_table", "securellm_alembic_version")
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(715517)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat().replace("+00:00", "Z")


class BudgetLedger:
    """Reserve / settle / release calls against `budgets`, with usage in a SQL database.

    Synchronous (SQLAlchemy): the server calls it from worker threads, never on the event loop.
    `clock` returns epoch seconds (tests inject one to cross days and months).
    """

    def __init__(self, url: str, budgets: dict | None = None, *, timezone: str = "UTC",
                 lease_seconds: float = 300.0, clock: Callable[[], float] = time.time, server_id: str = ""):
        validate_budgets(budgets or {})
        self.budgets = budgets or {}
        self.tz = ZoneInfo(timezone or "UTC")
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.server_id = server_id or f"{os.uname().nodename}:{os.getpid()}"
        self.engine = make_engine(url)
        migrate(self.engine)
        self.dialect = self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # -- periods --------------------------------------------------------------------------------
    def _periods(self, now: float) -> tuple[str, str, float, float]:
        t = _dt.datetime.fromtimestamp(now, self.tz)
        day0 = t.replace(hour=0, minute=0, second=0, microsecond=0)
        next_day = (day0 + _dt.timedelta(days=1, hours=3)).replace(hour=0)  # DST-safe next midnight
        first = day0.replace(day=1)
        next_month = (first + _dt.timedelta(days=32)).replace(day=1)
        return t.date().isoformat(), t.strftime("%Y-%m"), next_day.timestamp(), next_month.timestamp()

    # -- usage ------------------------------------------------------------------------------------
    def _usage(self, conn, user: str, now: float, day: str, month: str) -> dict:
        live = sa.or_(calls.c.state == "settled",
                      sa.and_(calls.c.state == "reserved", calls.c.lease_until > now))
        tok = sa.case((calls.c.state == "settled", calls.c.tokens), else_=calls.c.est_tokens)
        usd = sa.case((calls.c.state == "settled", sa.func.coalesce(calls.c.usd, 0.0)), else_=calls.c.est_usd)
        is_day = calls.c.day == day
        q = sa.select(
            sa.func.coalesce(sa.func.sum(sa.case((is_day, tok), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(tok), 0),
            sa.func.coalesce(sa.func.sum(sa.case((is_day, usd), else_=0.0)), 0.0),
            sa.func.coalesce(sa.func.sum(usd), 0.0),
        ).where(calls.c.user == user, calls.c.month == month, live)
        d_tok, m_tok, d_usd, m_usd = conn.execute(q).one()
        window = sa.select(sa.func.count(), sa.func.min(calls.c.created_at)).where(
            calls.c.user == user, calls.c.created_at > now - 60, calls.c.state != "released")
        n, oldest = conn.execute(window).one()
        return {"daily_tokens": int(d_tok), "monthly_tokens": int(m_tok), "daily_usd": float(d_usd),
                "monthly_usd": float(m_usd), "rpm": int(n), "_oldest": oldest}

    def usage(self, user: str) -> dict:
        """`input.usage` for the policy: tokens_today, cost_today, requests_last_minute."""
        now = self.clock()
        day, month, *_ = self._periods(now)
        with self.engine.connect() as conn:
            u = self._usage(conn, user, now, day, month)
            conn.rollback()
        return {"tokens_today": u["daily_tokens"], "cost_today": u["daily_usd"], "requests_last_minute": u["rpm"]}

    def status(self, user: str, groups: Iterable[str] = ()) -> dict | None:
        """`status.budget`: {dimension: {period, limit, used, left, resets_at}}, or None without limits."""
        limits = effective_limits(self.budgets, user, groups)
        if not limits:
            return None
        now = self.clock()
        day, month, next_day, next_month = self._periods(now)
        with self.engine.connect() as conn:
            u = self._usage(conn, user, now, day, month)
            conn.rollback()
        out = {}
        for dim in DIMENSIONS:
            if dim not in limits:
                continue
            used = u[dim]
            reset = {"day": next_day, "month": next_month}.get(PERIOD[dim])
            if dim == "rpm":
                reset = (u["_oldest"] + 60) if u["_oldest"] is not None else now
            lim = limits[dim]
            out[dim] = {"period": PERIOD[dim], "limit": lim, "used": round(used, 6) if "usd" in dim else used,
                        "left": max(0, round(lim - used, 6) if "usd" in dim else lim - used),
                        "resets_at": _iso(reset)}
        return out

    # -- reserve / settle --------------------------------------------------------------------------
    def _lock_user(self, conn, user: str, now: float) -> None:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert

            conn.execute(insert(subjects).values(user=user, created_at=now).on_conflict_do_nothing())
            conn.execute(sa.select(subjects.c.user).where(subjects.c.user == user).with_for_update())
        else:  # SQLite: BEGIN IMMEDIATE already holds the database write lock
            conn.execute(sa.text("INSERT OR IGNORE INTO securellm_budget_subjects (user, created_at) "
                                 "VALUES (:u, :t)"), {"u": user, "t": now})

    def reserve(self, user: str, groups: Iterable[str] = (), *, est_tokens: int, est_usd: float | None,
                model: str = "", lease_seconds: float | None = None) -> Reservation:
        """Atomically check every limit and record a reservation; raise BudgetError if one would be passed.

        `est_usd` None means the model's price is unknown: refused when a USD limit applies (it
        could not be enforced), otherwise reserved at 0 USD and reported as unknown by the caller.
        """
        limits = effective_limits(self.budgets, user, groups)
        now = self.clock()
        day, month, next_day, next_month = self._periods(now)
        usd_limited = any(k in limits for k in ("daily_usd", "monthly_usd"))
        if est_usd is None and usd_limited:
            raise BudgetError("budget_exhausted", f"No price is known for model {model!r}, so your USD budget cannot "
                                                  "be enforced; ask your admin to add it to c.SecureLLM.prices.",
                              dimension="price")
        est_usd = float(est_usd or 0.0)
        lease = self.lease_seconds if lease_seconds is None else lease_seconds
        rid = str(uuid.uuid4())
        with self.engine.begin() as conn:
            if limits:
                self._lock_user(conn, user, now)
                u = self._usage(conn, user, now, day, month)
                rpm = limits.get("rpm")
                if rpm is not None and u["rpm"] >= rpm:
                    reset = (u["_oldest"] or now) + 60
                    raise BudgetError("rate_limited", f"Rate limit of {rpm:g} requests per minute reached; "
                                                      f"retry after {_iso(reset)}.", _iso(reset), "rpm")
                for dim, est in (("daily_tokens", est_tokens), ("monthly_tokens", est_tokens),
                                 ("daily_usd", est_usd), ("monthly_usd", est_usd)):
                    lim = limits.get(dim)
                    if lim is None or u[dim] + est <= lim:
                        continue
                    reset = _iso(next_day if PERIOD[dim] == "day" else next_month)
                    unit = "tokens" if "tokens" in dim else "USD"
                    left = max(0, lim - u[dim])
                    raise BudgetError(
                        "budget_exhausted",
                        f"{'Daily' if PERIOD[dim] == 'day' else 'Monthly'} budget of {lim:g} {unit} would be "
                        f"exceeded (used {u[dim]:.6g}, left {left:.6g}, this request may need {est:.6g}); "
                        f"it resets at {reset}.", reset, dim)
            conn.execute(calls.insert().values(
                id=rid, user=user, model=model, day=day, month=month, created_at=now, lease_until=now + lease,
                state="reserved", est_tokens=int(est_tokens), est_usd=est_usd, tokens=None, usd=None,
                server=self.server_id))
        return Reservation(rid, user, int(est_tokens), est_usd, now + lease)

    def settle(self, res: Reservation, *, tokens: int, usd: float | None) -> None:
        """Record what the call really used (also after the lease ended: real spend always counts)."""
        with self.engine.begin() as conn:
            conn.execute(calls.update().where(calls.c.id == res.id).values(
                state="settled", tokens=int(tokens), usd=None if usd is None else float(usd)))

    def release(self, res: Reservation) -> None:
        """The call never reached the provider: it uses nothing and does not count toward rpm."""
        with self.engine.begin() as conn:
            conn.execute(calls.update().where(calls.c.id == res.id, calls.c.state == "reserved")
                         .values(state="released", tokens=0, usd=0.0))
