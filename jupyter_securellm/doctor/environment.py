"""Environment checks: what this interpreter runs at start-up and what it has installed.

The seed's own story: two litellm releases carried a `.pth` start-up hook that stole
environment variables, SSH keys and cloud credentials from every Python process. A `.pth`
line that starts with `import` runs on every interpreter start, before any of our code.
"""
from __future__ import annotations

import fnmatch
import os
import site
import subprocess
import sys
from importlib import resources

from . import packages
from .core import FAIL, PASS, SKIP, WARN, Result, check

# Well-known start-up hooks: (file name glob, distributions allowed to own it). The file must be
# listed in its owner's RECORD with the same hash; anything else with an `import` line fails.
PTH_ALLOWLIST = (
    ("distutils-precedence.pth", {"setuptools"}),          # setuptools' distutils shim
    ("__editable__.*.pth", None),                            # setuptools editable installs (owner: the project)
    ("_editable_impl_*.pth", None),                          # hatchling editable installs
    ("_virtualenv.pth", {"virtualenv"}),                     # virtualenv's own patch
    ("*-nspkg.pth", None),                                   # legacy setuptools namespace packages
    ("a1_coverage.pth", {"coverage"}),                       # coverage's subprocess measurement
    ("pywin32.pth", {"pywin32"}),
)


def site_dirs() -> list[str]:
    """Every directory whose .pth files this interpreter processes at start-up."""
    dirs = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    seen, out = set(), []
    for d in dirs:
        d = os.path.normpath(d)
        if d not in seen and os.path.isdir(d):
            seen.add(d)
            out.append(d)
    return out


def _import_lines(path: str) -> int:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if line.startswith(("import ", "import\t")))
    except OSError:
        return 0


@check("environment.pth-hooks", "environment", ".pth start-up hooks")
def pth_hooks(ctx) -> Result:
    bad, known = [], []
    for d in site_dirs():
        hooks = {}
        for name in sorted(os.listdir(d)):
            if name.endswith(".pth"):
                n = _import_lines(os.path.join(d, name))
                if n:  # lines without `import` only add paths: no code runs
                    hooks[name] = n
        owners = packages.pth_owners(d, hooks) if hooks else {}
        for name, n in hooks.items():
            path = os.path.join(d, name)
            owner = owners.get(name)
            who = f"{owner[0]} {owner[1]}" if owner else "no installed package"
            tampered = bool(owner and owner[2] and owner[2] != packages.record_hash(path))
            allowed = any(fnmatch.fnmatchcase(name, glob) and (ok is None or (owner and owner[0] in ok))
                          for glob, ok in PTH_ALLOWLIST)
            line = f"{path} (owner: {who}; {n} import line(s))"
            if tampered:
                bad.append(line + " -- differs from its owner's RECORD")
            elif allowed and owner:
                known.append(line)
            else:
                bad.append(line)
    if bad:
        return Result("environment.pth-hooks", FAIL,
                      f"{len(bad)} .pth file(s) run code at every Python start-up and are not on the allowlist",
                      "read each file; if it is not expected, uninstall its owner (pip uninstall NAME) and delete "
                      "the file, then rotate every credential this machine's Python processes could read",
                      bad + [f"allowed: {k}" for k in known])
    return Result("environment.pth-hooks", PASS,
                  f"no unexpected start-up hook in {len(site_dirs())} site-packages "
                  f"({len(known)} well-known one(s))", details=[f"allowed: {k}" for k in known])


def compromised_list() -> list[tuple[str, str, str]]:
    text = resources.files(__package__).joinpath("compromised.txt").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pin, _, reason = line.partition(" ")
        name, _, version = pin.partition("==")
        out.append((packages.canonical(name), version.strip(), reason.strip()))
    return out


@check("environment.compromised", "environment", "known-compromised releases")
def compromised(ctx) -> Result:
    bad_list = compromised_list()
    hits = []
    for d in packages.installed():
        for name, version, reason in bad_list:
            if d.name == name and d.version == version:
                hits.append(f"{name} {version} in {d.location}: {reason}")
    if hits:
        return Result("environment.compromised", FAIL, f"{len(hits)} known-compromised release(s) installed",
                      "treat the machine as breached: rotate every credential it held, rebuild the environment "
                      "from the hashed lock (requirements/deploy.txt), and check the .pth finding above", hits)
    return Result("environment.compromised", PASS,
                  f"none of the {len(bad_list)} known-compromised releases is installed")


BOOTSTRAP = {"pip", "setuptools"}  # put there by `python -m venv` itself
OURS = "jupyter-securellm"         # installed from the checkout, after the lock


def compare_lock(pins: dict[str, str], dists) -> tuple[list[str], list[str]]:
    """(problems, missing): distributions outside the lock or at another version; pins not installed."""
    problems, seen = [], set()
    for d in dists:
        seen.add(d.name)
        if d.name == OURS:
            continue
        want = pins.get(d.name)
        if want is None:
            if d.name not in BOOTSTRAP:
                problems.append(f"{d.name} {d.version} is not in the lock ({d.location})")
        elif want != d.version:
            problems.append(f"{d.name} {d.version} is installed, the lock pins {want} ({d.location})")
    missing = [f"{n}=={v}" for n, v in sorted(pins.items()) if n not in seen]
    return problems, missing


@check("environment.lock", "environment", "installed from the lock")
def lock(ctx) -> Result:
    if not ctx.lock:
        return Result("environment.lock", SKIP, "no lock given",
                      "pass --lock requirements/deploy.txt (or the lock your image was built from)")
    try:
        pins = packages.read_lock(ctx.lock)
    except packages.LockError as exc:
        from .core import DoctorError

        raise DoctorError(str(exc)) from None
    problems, missing = compare_lock(pins, packages.installed())
    if problems:
        return Result("environment.lock", FAIL, f"{len(problems)} distribution(s) differ from {ctx.lock}",
                      f"reinstall from the lock: pip install --require-hashes -r {ctx.lock} (or regenerate it "
                      "after a deliberate change: make lock)", problems)
    if missing:
        return Result("environment.lock", WARN, f"{len(missing)} pin(s) of {ctx.lock} are not installed",
                      f"pip install --require-hashes -r {ctx.lock}", missing)
    return Result("environment.lock", PASS, f"all {len(pins)} pins of {ctx.lock} installed, nothing else")


# Runs in a child interpreter: any socket connect during `import litellm` is recorded and refused.
_OFFLINE_PROBE = r"""
import json, os, sys
tries = []
def hook(event, args):
    if event == "socket.connect":
        addr = args[1]
        tries.append(str(addr[0]) if isinstance(addr, tuple) else str(addr))
        raise OSError("doctor: network refused during import")
    elif event == "socket.getaddrinfo":
        tries.append(str(args[0]))
        raise OSError("doctor: network refused during import")
sys.addaudithook(hook)
try:
    import litellm
    ok, err = True, ""
except Exception as exc:
    ok, err = False, type(exc).__name__
n = len(getattr(litellm, "model_cost", None) or {}) if ok else 0
from importlib.metadata import version
print(json.dumps({"ok": ok, "error": err, "tries": sorted(set(tries)), "prices": n, "version": version("litellm")}))
"""


@check("environment.litellm-offline", "environment", "litellm imports without network")
def litellm_offline(ctx) -> Result:
    import importlib.util
    import json

    if importlib.util.find_spec("litellm") is None:
        return Result("environment.litellm-offline", FAIL, "litellm is not installed; the broker cannot call providers",
                      "pip install --require-hashes -r requirements/deploy.txt")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITELLM_")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # what the server sets before importing litellm
    proc = subprocess.run([sys.executable, "-c", _OFFLINE_PROBE], env=env, capture_output=True, text=True, timeout=300)
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Result("environment.litellm-offline", FAIL, f"importing litellm crashed (exit {proc.returncode})",
                      f"run {sys.executable} -c 'import litellm' and fix what it prints")
    if out["tries"]:
        return Result("environment.litellm-offline", FAIL,
                      "importing litellm with the local price map set still reaches for the network",
                      "pin a litellm release that honours LITELLM_LOCAL_MODEL_COST_MAP (make lock)", out["tries"])
    if not out["ok"]:
        return Result("environment.litellm-offline", FAIL,
                      f"litellm does not import without network ({out['error']})",
                      "reinstall litellm from the lock; a firewalled server must not depend on a download")
    if not out["prices"]:
        return Result("environment.litellm-offline", WARN, "litellm imports offline but its local price map is empty",
                      "reinstall litellm; costs would be reported as 0")
    return Result("environment.litellm-offline", PASS,
                  f"litellm {out['version']} imports with no network access ({out['prices']} local prices)")
