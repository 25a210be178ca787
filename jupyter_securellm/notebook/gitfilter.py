"""The git filter, installed the way nbstripout installs its own.

``git add`` runs the clean filter, so the blob stored in git is the scrubbed notebook while the working
copy keeps its content; ``git diff`` shows the scrubbed view through ``diff.securellm.textconv``.
``required = true`` makes git refuse to stage a file when the filter fails, instead of storing it raw.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys

FILTER = "securellm"
DEFAULT_PATTERNS = ("*.ipynb",)
_ATTRS = (f"filter={FILTER}", f"diff={FILTER}")


class GitError(Exception):
    pass


def _run(args, cwd=None, check=True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise GitError("git is not on PATH") from None
    if check and proc.returncode != 0:
        raise GitError(proc.stderr.strip() or f"git {' '.join(args)} failed")
    return proc


def _scope_args(scope: str) -> list:
    return {"local": ["--local"], "global": ["--global"], "system": ["--system"]}[scope]


def commands(python: str | None = None) -> tuple:
    """(clean, process, textconv) command lines with an absolute interpreter, quoted for git's shell.

    git (2.11+) uses ``process``, one filter for a whole ``git add``; ``clean`` serves older gits and
    tools that only know per-file filters."""
    exe = shlex.quote(os.path.abspath(python or sys.executable))
    clean = f"{exe} -m jupyter_securellm scrub --stdin-filter --path %f"
    process = f"{exe} -m jupyter_securellm scrub --git-filter-process"
    textconv = f"{exe} -m jupyter_securellm scrub --textconv"
    return clean, process, textconv


def git_dir(cwd=None) -> str:
    proc = _run(["rev-parse", "--absolute-git-dir"], cwd=cwd, check=False)
    if proc.returncode != 0:
        raise GitError("not a git repository (run this inside one, or use --global)")
    return proc.stdout.strip()


def attributes_file(scope: str, attrfile: str | None = None, cwd=None) -> str:
    if attrfile:
        return os.path.abspath(os.path.expanduser(attrfile))
    if scope == "local":
        git_dir(cwd)  # a clear error outside a repository
        # --git-path resolves to the common dir in a linked worktree, where git reads info/attributes
        rel = _run(["rev-parse", "--git-path", "info/attributes"], cwd=cwd).stdout.strip()
        return os.path.abspath(os.path.join(cwd or os.getcwd(), rel))
    proc = _run(["config", *_scope_args(scope), "core.attributesFile"], cwd=cwd, check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        return os.path.abspath(os.path.expanduser(proc.stdout.strip()))
    if scope == "global":
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        return os.path.join(base, "git", "attributes")
    raise GitError("no core.attributesFile in the system config; pass --attributes FILE")


def _read_lines(path: str) -> list:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def install(scope: str = "local", attrfile: str | None = None, python: str | None = None,
            patterns=DEFAULT_PATTERNS, cwd=None) -> list:
    """Configure the filter and add attribute lines; returns messages for the user."""
    if scope == "local":
        git_dir(cwd)  # fail early outside a repository
    clean, process, textconv = commands(python)
    cfg = ["config", *_scope_args(scope)]
    _run([*cfg, f"filter.{FILTER}.clean", clean], cwd=cwd)
    _run([*cfg, f"filter.{FILTER}.process", process], cwd=cwd)
    _run([*cfg, f"filter.{FILTER}.smudge", "cat"], cwd=cwd)
    _run([*cfg, f"filter.{FILTER}.required", "true"], cwd=cwd)
    _run([*cfg, f"diff.{FILTER}.textconv", textconv], cwd=cwd)
    path = attributes_file(scope, attrfile, cwd)
    lines = _read_lines(path)
    messages = [f"filter.{FILTER} configured ({scope}): clean = {clean}"]
    added = []
    for pattern in patterns:
        want = f"{pattern} {_ATTRS[0]} {_ATTRS[1]}"
        if want not in lines:
            lines.append(want)
            added.append(want)
        for line in lines:
            parts = line.split()
            if parts and parts[0] == pattern and any(p.startswith("filter=") and p != _ATTRS[0] for p in parts):
                messages.append(
                    f"note: {path} also sets another filter for {pattern} ({line.strip()}); "
                    "git applies the last matching line, which is ours"
                )
    if added:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        messages.append(f"attributes added to {path}: " + "; ".join(added))
    else:
        messages.append(f"attributes already present in {path}")
    return messages


def uninstall(scope: str = "local", attrfile: str | None = None, cwd=None) -> list:
    if scope == "local":
        git_dir(cwd)
    cfg = ["config", *_scope_args(scope)]
    removed = [section for section in (f"filter.{FILTER}", f"diff.{FILTER}")
               if _run([*cfg, "--remove-section", section], cwd=cwd, check=False).returncode == 0]
    messages = [f"removed from the {scope} git config: {', '.join(removed)}" if removed
                else f"nothing to remove from the {scope} git config"]
    path = attributes_file(scope, attrfile, cwd)
    lines = _read_lines(path)
    kept, changed = [], False
    for line in lines:
        parts = line.split()
        if parts and not parts[0].startswith("#") and any(p in _ATTRS for p in parts[1:]):
            changed = True
            rest = [p for p in parts[1:] if p not in _ATTRS]
            if rest:
                kept.append(" ".join([parts[0], *rest]))
            continue
        kept.append(line)
    if changed:
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(kept) + ("\n" if kept else ""))
        messages.append(f"attributes removed from {path}")
    return messages


def status(scope: str = "local", attrfile: str | None = None, cwd=None) -> tuple:
    """(installed?, report lines)."""
    report = []
    if scope == "local":
        report.append(f"repository: {os.path.dirname(git_dir(cwd))}")
    cfg = ["config", *_scope_args(scope)] if scope != "local" else ["config"]

    def get(key):
        proc = _run([*cfg, key], cwd=cwd, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    clean = get(f"filter.{FILTER}.clean")
    process = get(f"filter.{FILTER}.process")
    required = get(f"filter.{FILTER}.required")
    textconv = get(f"diff.{FILTER}.textconv")
    report.append(f"filter.{FILTER}.clean = {clean or '(not set)'}")
    report.append(f"filter.{FILTER}.process = {process or '(not set)'}")
    report.append(f"filter.{FILTER}.required = {required or '(not set)'}")
    report.append(f"diff.{FILTER}.textconv = {textconv or '(not set)'}")
    ok = bool(clean)
    if clean:
        try:
            exe = shlex.split(clean)[0]
        except ValueError:
            exe = ""
        if not os.path.exists(exe):
            report.append(f"warning: the interpreter {exe} no longer exists; run `jupyter-securellm install` again")
            ok = False
    if required != "true":
        report.append("warning: required is not true: a failing filter would let git store the file unscrubbed")
    if scope == "local" and not attrfile:
        proc = _run(["check-attr", "filter", "diff", "--", "x.ipynb"], cwd=cwd, check=False)
        attrs = proc.stdout.strip().splitlines()
        report.extend(f"attribute: {a}" for a in attrs)
        attr_ok = any(a.endswith(f"filter: {FILTER}") for a in attrs)
    else:
        path = attributes_file(scope, attrfile, cwd)
        lines = [line for line in _read_lines(path) if _ATTRS[0] in line.split()]
        report.extend(f"attribute ({path}): {line}" for line in lines)
        attr_ok = bool(lines)
    if not attr_ok:
        report.append("no *.ipynb attribute points at the filter")
    installed = ok and attr_ok
    report.insert(0, f"jupyter-securellm git filter is {'installed' if installed else 'NOT installed'} ({scope})")
    return installed, report
