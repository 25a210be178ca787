"""The check registry, the result type and the run loop.

A check is a function `(ctx) -> Result | list[Result]`, registered with `@check(id, group)`.
A check that raises is reported as `error` and makes the run exit 2 ("could not run"):
a self-check that silently skips what it could not look at would be worse than none.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field

PASS, WARN, FAIL, SKIP, ERROR = "pass", "warn", "fail", "skip", "error"
GROUPS = ("environment", "config", "process", "hub")
_MODULES = ("environment", "config", "process", "hub")


class DoctorError(Exception):
    """The doctor cannot run at all (a config file that does not load, a lock that does not parse)."""


@dataclass
class Result:
    check: str
    status: str
    summary: str
    fix: str = ""
    details: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Check:
    id: str
    group: str
    title: str
    func: object


CHECKS: list[Check] = []


def check(id: str, group: str, title: str):
    """Register a check; ids are `<group>.<name>` and stable (docs/doctor.md lists them)."""
    assert group in GROUPS, group

    def deco(func):
        CHECKS.append(Check(id, group, title, func))
        return func

    return deco


@dataclass
class Context:
    """What the checks look at. Built once by the CLI; checks cache expensive loads on it."""

    config_files: list = field(default_factory=list)   # jupyter_server_config.py/.json; empty: discover
    lock: str | None = None                             # requirements file with pins (and hashes)
    urls: list = field(default_factory=list)            # running servers: base URLs
    token: str | None = None                            # Jupyter token for `urls`
    pids: list = field(default_factory=list)            # running servers by pid
    hub_config: str | None = None                       # jupyterhub_config.py
    discover_servers: bool = True
    cache: dict = field(default_factory=dict)

    def cached(self, key, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def load_checks() -> list[Check]:
    for name in _MODULES:
        importlib.import_module(f"{__package__}.{name}")
    return CHECKS


def run_checks(ctx: Context, groups=GROUPS, only=()) -> list[Result]:
    results: list[Result] = []
    for c in load_checks():
        if c.group not in groups or (only and c.id not in only):
            continue
        try:
            out = c.func(ctx)
        except DoctorError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as "could not run"; the message names no value
            out = Result(c.id, ERROR, f"the check could not run ({type(exc).__name__}: {_short(exc)})",
                         "report this with the output of `jupyter-securellm doctor --format json`")
        for r in out if isinstance(out, list) else [out]:
            results.append(r)
    return results


def exit_code(results) -> int:
    """0 when nothing failed (warnings allowed), 1 on a failure, 2 when a check could not run."""
    statuses = {r.status for r in results}
    if ERROR in statuses:
        return 2
    return 1 if FAIL in statuses else 0


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text[:160]
