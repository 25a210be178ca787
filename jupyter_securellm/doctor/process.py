"""Process checks: a running server is non-dumpable and holds no provider key in its environment.

Tier 2: a kernel of the same user can read `/proc/<server>/environ` and memory unless the server
called `prctl(PR_SET_DUMPABLE, 0)`, and it inherits the server's environment. The server answers
for itself through `status` (its `process` field); by pid the doctor looks at /proc directly.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from .core import FAIL, PASS, SKIP, WARN, DoctorError, Result, check

PREFIX = "jupyter-securellm/v1"


def _servers(ctx) -> list[dict]:
    """[{"url", "token", "pid"}] to look at: the given URLs and pids, else this user's running servers."""
    out = [{"url": u, "token": ctx.token, "pid": None} for u in ctx.urls]
    out += [{"url": None, "token": None, "pid": int(p)} for p in ctx.pids]
    if not out and ctx.discover_servers:
        try:
            from jupyter_server.serverapp import list_running_servers
        except ImportError:
            return []
        for info in list_running_servers():
            out.append({"url": info.get("url"), "token": info.get("token") or None, "pid": info.get("pid")})
    return out


def fetch_status(url: str, token: str | None) -> dict | None:
    """The server's `status` answer; None when it does not run our extension."""
    req = urllib.request.Request(url.rstrip("/") + f"/{PREFIX}/status")
    if token:
        req.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise DoctorError(f"{url}: status answered HTTP {exc.code} (give the server's token with --token "
                          "or $JUPYTER_TOKEN)") from None
    except OSError as exc:
        raise DoctorError(f"{url}: cannot reach the server ({type(exc).__name__})") from None


def by_pid(pid: int) -> dict:
    """What /proc says about a process: its uid, whether its /proc files are closed, its env if readable."""
    base = f"/proc/{pid}"
    try:
        with open(f"{base}/status") as f:
            uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        owner = os.stat(f"{base}/environ").st_uid
    except (OSError, StopIteration):
        raise DoctorError(f"pid {pid}: no such process (or /proc is not available)") from None
    # A non-dumpable process's /proc files belong to root; for a root process that proves nothing.
    dumpable = None if uid == 0 else owner != 0
    env = None
    try:
        with open(f"{base}/environ", "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    except OSError:
        pass
    return {"uid": uid, "dumpable": dumpable, "env": env}


def _looks(ctx):
    return ctx.cached("process", lambda: _collect(ctx))


def _collect(ctx):
    looks, by_status_pid = [], {}
    for s in _servers(ctx):
        label, status, proc = (s["url"] or f"pid {s['pid']}"), None, None
        if s["url"]:
            status = fetch_status(s["url"], s["token"])
            if status is None:
                continue  # a Jupyter server without our extension: nothing of ours to check
        pid = s["pid"]
        if pid and not s["url"] and pid in by_status_pid:
            continue  # already answered for itself through --url
        if pid:
            try:
                proc = by_pid(int(pid))
            except DoctorError:
                if not status:
                    raise
        looks.append((label, status, proc))
        spid = ((status or {}).get("process") or {}).get("pid")
        if spid:
            by_status_pid[spid] = True
    return looks


def _secret_env_names(env: dict) -> list[str]:
    from ..detect import Scanner

    sc = Scanner()
    return sorted(k.decode(errors="replace") for k, v in env.items()
                  if v and any(f.rule_id != "generic-api-key" for f in sc.scan(v.decode(errors="replace"))))


@check("process.dumpable", "process", "server is non-dumpable")
def dumpable(ctx):
    looks = _looks(ctx)
    if not looks:
        return Result("process.dumpable", SKIP, "no running server with the extension found",
                      "run the doctor as the server's user, or pass --url URL (with --token) or --pid PID")
    bad, good, unknown = [], [], []
    for label, status, proc in looks:
        flag = (status or {}).get("process", {}).get("dumpable") if status else None
        if flag is None and proc:
            flag = proc["dumpable"]
        if flag is None:
            unknown.append(f"{label}: cannot tell (a root process by pid; give --url for its status endpoint)")
        elif flag:
            bad.append(f"{label}: dumpable: kernels of its user can read its memory and /proc/PID/environ")
        else:
            good.append(f"{label}: PR_SET_DUMPABLE 0 in effect")
    if bad:
        return Result("process.dumpable", FAIL, f"{len(bad)} server(s) are dumpable",
                      "c.SecureLLM.harden_process = True and restart the server", bad + good + unknown)
    if unknown:
        return Result("process.dumpable", WARN, "could not tell for some servers", details=unknown + good)
    return Result("process.dumpable", PASS, f"{len(good)} running server(s) non-dumpable", details=good)


@check("process.environment", "process", "no provider key in the server's environment")
def environment(ctx):
    looks = _looks(ctx)
    if not looks:
        return Result("process.environment", SKIP, "no running server with the extension found",
                      "run the doctor as the server's user, or pass --url URL (with --token) or --pid PID")
    bad, good, unknown = [], [], []
    for label, status, proc in looks:
        names = (status or {}).get("process", {}).get("secret_env") if status else None
        if names is None and proc and proc["env"] is not None:
            names = _secret_env_names(proc["env"])
        if names is None:
            unknown.append(f"{label}: environment not readable")
        elif names:
            bad.append(f"{label}: {', '.join(names)}")
        else:
            good.append(f"{label}: no provider-shaped value")
    if bad:
        return Result("process.environment", FAIL,
                      "provider-shaped value(s) in a server's environment (kernels inherit and can read it)",
                      "remove the variables from the server's environment; keep provider keys in Vault only",
                      bad + good + unknown)
    if unknown:
        return Result("process.environment", WARN, "could not read some servers' environment", details=unknown + good)
    return Result("process.environment", PASS, f"{len(good)} running server(s) hold no provider key in their "
                  "environment", details=good)
