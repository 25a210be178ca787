"""Policy as code: every broker action is decided by Rego (regopy, in process) before anything leaves.

The decision is `data.jupyter_securellm.authz.deny`, a set of human-readable reasons (the conftest
convention): empty allows. Three choices make a policy error deny instead of allow:

- regopy's strict built-in errors are on (off by default there; in OPA a failing built-in makes a deny
  rule silently undefined, which would allow);
- a policy that fails to parse, or whose evaluation errors, yields a deny with the reason, and the
  log names the file and line;
- the loaded files must declare `package jupyter_securellm.authz` (a typo in the package name would
  otherwise make `deny` undefined, i.e. allow everything).

Facts regopy cannot compute (it lacks every `net.*` built-in, which silently evaluate to undefined) are
computed here in Python and passed in `input` (`host`, `host_allowed`, the time fields in the
configured time zone).

Memory: regopy's native library brings its own C++ `operator new`/`delete` (snmalloc, from Trieste:
microsoft/rego-cpp#128). If the process loaded libstdc++ before regopy (any C++ extension does: frozenlist
under aiohttp and litellm, tokenizers, pyzmq), allocations made inside libstdc++ and freed by regopy's
inline code go to different allocators and are never returned: about 1 kB per decision, native memory
that tracemalloc does not see (+1.4 kB per call in the broker, docs/broker.md "Memory"). `_regopy()`
makes libstdc++ global before regopy is loaded, so every `new` and `delete` is libstdc++'s, whatever the
import order.

Unit tests: regopy 1.5.2 crashes the process (SIGSEGV) on most `with input as ...` expressions, so
decision policies may not use `with` (refused at load, keeping the last good policy), and `test_*`
rules in `*_test.rego` files are either booleans or test cases `{"input": {...}, "deny": [...]}` that
`run_tests` evaluates by setting the input itself (docs/policy.md).
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

PACKAGE = "jupyter_securellm.authz"
QUERY = f"data.{PACKAGE}.deny"
ACTIONS = ("chat", "secrets.get", "models", "status")

#: With no policy configured: the configured models, through allowlisted hosts, and nothing else.
DEFAULT_POLICY = """package jupyter_securellm.authz

# Shipped default (no c.SecureLLM.policy_paths): allow the configured models and nothing else.
deny contains msg if {
    input.action == "chat"
    not input.model in input.models
    msg := sprintf("model %v is not configured on this server", [input.model])
}

deny contains msg if {
    input.action == "chat"
    input.host_allowed == false
    msg := sprintf("host %v is not in c.SecureLLM.allowed_hosts", [input.host])
}
"""

_PKG_RE = re.compile(r"^\s*package\s+([A-Za-z0-9_.\[\]\"]+)", re.M)
_WITH_RE = re.compile(r"\bwith\s+(input|data)\b")
_COMMENT_RE = re.compile(r"#[^\n]*")
_TEST_RE = re.compile(r"^\s*(test_[A-Za-z0-9_]*)\b", re.M)
_ERR_LOC_RE = re.compile(r"-- ([^\s:]+):(\d+):(\d+)")
_ERR_SEQ_RE = re.compile(r"\(error \d+:([^|\s]+)\|(\d+)\|\d+\s*\(errormsg \d+:([^)]*)\)")


class PolicyError(Exception):
    """A policy that cannot be loaded or evaluated; the message names the file (and line when known)."""


@dataclass(frozen=True)
class Decision:
    """The outcome of one policy query: `allowed` iff `reasons` is empty."""

    reasons: tuple[str, ...]
    error: str | None = None
    elapsed_ms: float = 0.0

    @property
    def allowed(self) -> bool:
        return not self.reasons

    def sentence(self) -> str:
        """One sentence for a 403 message and `%llm` output."""
        return "; ".join(self.reasons)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _rego_error_text(exc: BaseException, sources: dict[str, str]) -> str:
    """Turn regopy's error s-expression into 'file:line: message' lines."""
    raw = str(exc)
    out = []
    for name, off, msg in _ERR_SEQ_RE.findall(raw):
        src = sources.get(name, "")
        out.append(f"{name}:{_line_of(src, int(off)) if src else '?'}: {msg.strip()}")
    return "; ".join(out) or raw.strip()[:500]


def policy_files(paths: Iterable[str | os.PathLike], *, tests: bool = False) -> list[Path]:
    """The `.rego` files under `paths` (files or folders, recursive), sorted; `*_test.rego` only if `tests`."""
    found: list[Path] = []
    for p in paths:
        p = Path(os.path.expanduser(str(p)))
        if p.is_dir():
            cands = sorted(q for q in p.rglob("*.rego") if q.is_file())
        elif p.is_file():
            cands = [p]
        else:
            raise PolicyError(f"{p}: no such policy file or folder (c.SecureLLM.policy_paths).")
        for q in cands:
            if tests or not q.name.endswith("_test.rego"):
                found.append(q)
    return found


@functools.cache
def _regopy():
    """regopy, loaded once after libstdc++ is made global (see the module docstring, "Memory")."""
    global_libstdcxx()
    import regopy

    return regopy


def global_libstdcxx() -> bool:
    """Load libstdc++ with RTLD_GLOBAL (or promote the copy already loaded): True if done.

    Must run before regopy's library is loaded: its `operator new`/`delete` then bind to libstdc++'s,
    like every other library's, instead of regopy's own. Linux/glibc only; elsewhere a no-op.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL("libstdc++.so.6", mode=os.RTLD_GLOBAL)
    except OSError:  # no libstdc++ on this system: regopy's wheel cannot load either
        return False
    return True


def _new_interpreter():
    regopy = _regopy()

    interp = regopy.Interpreter()
    interp.strict_built_in_errors = True
    return interp


def compile_modules(sources: dict[str, str], *, allow_with: bool = False):
    """An interpreter with these modules, checked to parse; raises PolicyError naming file and line."""
    regopy = _regopy()

    if not any(m == PACKAGE for src in sources.values() for m in _PKG_RE.findall(src)):
        raise PolicyError(f"no file declares `package {PACKAGE}` ({', '.join(sources) or 'no files'}); "
                          "the decision is data.jupyter_securellm.authz.deny.")
    if not allow_with:
        for name, src in sources.items():
            m = _WITH_RE.search(_COMMENT_RE.sub(lambda c: " " * len(c.group()), src))
            if m:
                raise PolicyError(f"{name}:{_line_of(src, m.start())}: `with {m.group(1)} as` is not supported in "
                                  "decision policies (it crashes regopy 1.5.2); move tests to *_test.rego files.")
    interp = _new_interpreter()
    try:  # add_module parses; the first query compiles and reports the remaining errors
        for name, src in sources.items():
            interp.add_module(name, src)
        interp.set_input({})
        interp.query(QUERY)
    except regopy.RegoError as exc:
        raise PolicyError(_rego_error_text(exc, sources)) from None
    return interp


def _query_set(interp, query, bundle=None) -> tuple[list | None, str | None]:
    """(values, error). values None means undefined. With a bundle, the compiled plan is reused."""
    out = interp.query(query) if bundle is None else interp.query_bundle(bundle)
    if not out.ok():
        return None, "evaluation error (a built-in failed under strict built-in errors)"
    data = json.loads(str(out)) if str(out) != "undefined" else {}
    exprs = data.get("expressions")
    if not exprs:
        return None, None
    return exprs[0], None


class PolicyEngine:
    """Loads Rego from `paths` (or the shipped default), reloads edited files, decides actions.

    Thread-safe (one lock around the interpreter: a decision takes well under a millisecond).
    A reload that fails keeps the last good policy and reports the error through `log` loudly;
    a policy that never loaded denies everything with the load error as the reason.
    """

    def __init__(self, paths: Iterable[str] = (), *, log=None, reload_interval: float = 1.0):
        self.paths = [str(p) for p in paths]
        self.log = log
        self.reload_interval = reload_interval
        self._lock = threading.Lock()
        self._interp = None
        self._bundle = None
        self._stamp: tuple | None = None
        self._checked = 0.0
        self.error: str | None = None
        self.files: list[str] = []
        self.uses_usage = False  # does any loaded policy read input.usage (else the ledger is not queried)?
        self.reload(force=True)

    # -- loading ----------------------------------------------------------------------------
    def _snapshot(self) -> tuple[tuple, dict[str, str]]:
        files = policy_files(self.paths)
        stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        return stamp, {str(f): f.read_text(encoding="utf-8") for f in files}

    def reload(self, force: bool = False) -> bool:
        """Reload when a file changed; True if a new policy is in force."""
        try:
            if not self.paths:
                stamp, sources = ("default",), {"<default>": DEFAULT_POLICY}
            else:
                stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in policy_files(self.paths))
                if not force and stamp == self._stamp:
                    return False
                stamp, sources = self._snapshot()
                if not sources:
                    raise PolicyError(f"no .rego files in {', '.join(self.paths)} (c.SecureLLM.policy_paths).")
            if not force and stamp == self._stamp:
                return False
            compiled = compile_modules(sources)
            # A bundle is compiled once; `query` would recompile every module on each call (~10x slower).
            try:
                bundle = compiled.build(QUERY)
            except Exception as exc:  # noqa: BLE001 - regopy.RegoError: name file and line
                raise PolicyError(_rego_error_text(exc, sources)) from None
            interp = _new_interpreter()
        except (PolicyError, OSError, UnicodeDecodeError) as exc:
            msg = str(exc)
            if msg != self.error and self.log:
                kept = "keeping the last good policy" if self._interp is not None else "denying every action"
                self.log.error("SecureLLM: policy error, %s: %s", kept, msg)
            self.error = msg
            try:  # do not retry a broken file on every call: only when it changes again
                self._stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size)
                                    for f in policy_files(self.paths)) if self.paths else self._stamp
            except (PolicyError, OSError):
                pass
            return False
        with self._lock:
            self._interp, self._bundle = interp, bundle
        self._stamp = stamp
        self.files = list(sources)
        self.uses_usage = any(re.search(r"\busage\b", _COMMENT_RE.sub("", src)) for src in sources.values())
        if self.error and self.log:
            self.log.warning("SecureLLM: policy reloaded, error cleared: %s", ", ".join(self.files))
        elif self.log:
            self.log.info("SecureLLM: policy loaded: %s", ", ".join(self.files))
        self.error = None
        return True

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if self.paths and now - self._checked >= self.reload_interval:
            self._checked = now
            self.reload()

    # -- deciding -----------------------------------------------------------------------------
    def decide(self, input_doc: dict) -> Decision:
        self._maybe_reload()
        t0 = time.perf_counter()
        if self._interp is None:
            return Decision((f"the policy could not be loaded: {self.error}",), error=self.error)
        with self._lock:
            try:
                self._interp.set_input(input_doc)
                values, err = _query_set(self._interp, QUERY, self._bundle)
            except Exception as exc:  # noqa: BLE001 - any interpreter failure denies
                values, err = None, f"{type(exc).__name__}: {str(exc)[:300]}"
        ms = (time.perf_counter() - t0) * 1e3
        if err:
            if self.log:
                self.log.error("SecureLLM: policy %s failed for action %r: %s", ", ".join(self.files),
                               input_doc.get("action"), err)
            return Decision((f"the policy failed to evaluate ({err}); denied to be safe",), error=err, elapsed_ms=ms)
        if values is None:
            return Decision((), elapsed_ms=ms)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            return Decision(("the policy's deny is not a set of strings; denied to be safe",),
                            error="bad deny type", elapsed_ms=ms)
        return Decision(tuple(sorted(values)), elapsed_ms=ms)


# -- the input document ------------------------------------------------------------------------

def time_facts(now_ns: int, tz: str = "UTC") -> dict:
    """`input.time`: the wall clock in the policy time zone (ISO weekday: Monday 1 .. Sunday 7)."""
    from zoneinfo import ZoneInfo

    t = _dt.datetime.fromtimestamp(now_ns / 1e9, ZoneInfo(tz or "UTC"))
    return {"now_ns": int(now_ns), "hour": t.hour, "minute": t.minute, "weekday": t.isoweekday(),
            "date": t.date().isoformat(), "timezone": tz or "UTC"}


def build_input(*, user: str, action: str, groups: Iterable[str] = (), via: str = "browser",
                kernel_id: str | None = None, notebook_path: str | None = None, model: str | None = None,
                provider: str | None = None, host: str | None = None, host_allowed: bool | None = None,
                models: Iterable[str] = (), request: dict | None = None, usage: dict | None = None,
                alerts: Iterable[dict] = (), now_ns: int | None = None, timezone: str = "UTC",
                source_addr: str | None = None, secret_path: str | None = None) -> dict:
    """The `input` document every policy sees (docs/policy.md has the table)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {ACTIONS}")
    req = request or {}
    use = usage or {}
    return {
        "user": user, "groups": sorted(set(groups)), "via": via, "kernel_id": kernel_id,
        "notebook_path": notebook_path, "action": action, "model": model, "provider": provider,
        "host": host, "host_allowed": host_allowed, "models": sorted(models),
        "secret_path": secret_path, "source_addr": source_addr,
        "time": time_facts(time.time_ns() if now_ns is None else now_ns, timezone),
        "request": {"max_tokens": req.get("max_tokens"), "stream": bool(req.get("stream", False)),
                    "tools": int(req.get("tools", 0) or 0)},
        "usage": {"tokens_today": int(use.get("tokens_today", 0)), "cost_today": float(use.get("cost_today", 0.0)),
                  "requests_last_minute": int(use.get("requests_last_minute", 0))},
        "alerts": [dict(a) for a in alerts],
    }


# -- the test runner (`jupyter-securellm policy test`) --------------------------------------------

@dataclass
class TestResult:
    name: str  # package.rule
    file: str
    outcome: str  # pass | fail | error
    detail: str = ""


@dataclass
class TestReport:
    results: list[TestResult] = field(default_factory=list)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        if self.error or any(r.outcome == "error" for r in self.results):
            return 2
        if any(r.outcome == "fail" for r in self.results) or not self.results:
            return 1
        return 0


def _check_case(interp, case: dict) -> tuple[str, str]:
    """Evaluate a `{"input": ..., "deny": [...] | "denied": bool | "deny_contains": str}` case."""
    if not isinstance(case.get("input"), dict):
        return "error", "a test case needs an 'input' object"
    interp.set_input(case["input"])
    values, err = _query_set(interp, QUERY)
    if err:
        return "error", err
    got = sorted(values or [])
    if "deny" in case:
        want = sorted(case["deny"])
        return ("pass", "") if got == want else ("fail", f"deny = {got}, want {want}")
    if "denied" in case:
        ok = bool(got) == bool(case["denied"])
        return ("pass", "") if ok else ("fail", f"deny = {got}, want {'some reason' if case['denied'] else 'none'}")
    if "deny_contains" in case:
        sub = str(case["deny_contains"])
        return ("pass", "") if any(sub in g for g in got) else ("fail", f"no reason contains {sub!r}: {got}")
    return "error", "a test case needs 'deny', 'denied' or 'deny_contains'"


def run_tests(paths: Iterable[str], *, pattern: str | None = None) -> TestReport:
    """Discover `test_*` rules in the `.rego` files under `paths` and query each (like `opa test`).

    A rule that is `true` passes; `false`/undefined fails; an object is a test case evaluated against
    `data.jupyter_securellm.authz.deny` with its `input`.
    """
    report = TestReport()
    try:
        files = policy_files(paths, tests=True)
        sources = {str(f): f.read_text(encoding="utf-8") for f in files}
    except (PolicyError, OSError, UnicodeDecodeError) as exc:
        report.error = str(exc)
        return report
    if not sources:
        report.error = f"no .rego files in {', '.join(map(str, paths))}"
        return report
    try:
        interp = compile_modules(sources)
    except PolicyError as exc:
        report.error = str(exc)
        return report
    rx = re.compile(pattern) if pattern else None
    for name, src in sources.items():
        pkgs = _PKG_RE.findall(src)
        if not pkgs:
            continue
        seen = []
        for rule in _TEST_RE.findall(src):
            if rule not in seen:
                seen.append(rule)
        for rule in seen:
            full = f"{pkgs[0]}.{rule}"
            if rx and not rx.search(full):
                continue
            try:
                interp.set_input({})
                value, err = _query_set(interp, f"data.{pkgs[0]}.{rule}")
                if err:
                    outcome, detail = "error", err
                elif value is True:
                    outcome, detail = "pass", ""
                elif isinstance(value, dict):
                    outcome, detail = _check_case(interp, value)
                elif isinstance(value, list) and value and all(isinstance(c, dict) for c in value):
                    outcome, detail = "pass", ""
                    for n, case in enumerate(value):
                        o, d = _check_case(interp, case)
                        if o != "pass":
                            outcome, detail = o, f"case {n}: {d}"
                            break
                else:
                    outcome, detail = "fail", f"value {json.dumps(value)}"
            except Exception as exc:  # noqa: BLE001
                outcome, detail = "error", f"{type(exc).__name__}: {exc}"
            report.results.append(TestResult(full, name, outcome, detail))
    return report


def evaluate_file(paths: Iterable[str], input_doc: dict) -> Decision:
    """One decision for `policy eval` (no reloading, no background state)."""
    eng = PolicyEngine(list(paths), reload_interval=1e9)
    if eng.error and eng._interp is None:
        raise PolicyError(eng.error)
    return eng.decide(input_doc)


Clock = Callable[[], float]
