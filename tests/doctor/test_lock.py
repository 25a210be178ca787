"""The hashed locks: they cover pyproject.toml, and they are what `make test` installed.

A dependency added to pyproject.toml without refreshing the locks fails here, with the command
that fixes it. The second test compares the interpreter's distributions with the lock it was
installed from (the Makefile records that lock's digest in the venv's stamp file).
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from jupyter_securellm.doctor.environment import compare_lock
from jupyter_securellm.doctor.packages import canonical, installed, read_lock

REPO = Path(__file__).resolve().parents[2]
FIX = "the lock is stale: run `make lock` and commit requirements/"


def pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def unmet(reqs, pins, extra=""):
    env = {**default_environment(), "extra": extra}
    out = []
    for line in reqs:
        r = Requirement(line)
        if r.marker and not r.marker.evaluate(env):
            continue
        if canonical(r.name) == "jupyter-securellm":
            continue
        got = pins.get(canonical(r.name))
        if got is None:
            out.append(f"{line}: not in the lock")
        elif not r.specifier.contains(got, prereleases=True):
            out.append(f"{line}: the lock pins {got}")
    return out


def test_test_lock_covers_pyproject():
    meta = pyproject()
    pins = read_lock(REPO / "requirements" / "test.txt")
    reqs = meta["project"]["dependencies"] + meta["project"]["optional-dependencies"]["test"]
    problems = unmet(reqs, pins, "test") + unmet(meta["build-system"]["requires"], pins)
    assert not problems, f"{FIX}\n" + "\n".join(problems)


def test_deploy_lock_covers_the_runtime_dependencies():
    pins = read_lock(REPO / "requirements" / "deploy.txt")
    problems = unmet(pyproject()["project"]["dependencies"], pins)
    assert not problems, f"{FIX}\n" + "\n".join(problems)


def test_every_pin_carries_hashes():
    for name in ("test.txt", "deploy.txt"):
        text = (REPO / "requirements" / name).read_text()
        blocks = [b for b in text.split("\n") if "==" in b and not b.lstrip().startswith("#")]
        assert blocks and all(b.rstrip().endswith("\\") for b in blocks), f"{name}: a pin without --hash lines; {FIX}"


def test_this_environment_is_what_the_lock_says():
    """`make install` writes the lock's sha256 to .venv/.installed; a venv built otherwise has nothing to prove."""
    stamp = Path(sys.prefix) / ".installed"
    if not stamp.is_file() or "requirements/test.txt" not in stamp.read_text():
        pytest.skip(f"{sys.prefix} was not installed by `make install` from requirements/test.txt")
    lock = REPO / "requirements" / "test.txt"
    recorded = stamp.read_text().split()[0]
    assert recorded == hashlib.sha256(lock.read_bytes()).hexdigest(), \
        "requirements/test.txt changed after this venv was installed: run `make install`"
    problems, missing = compare_lock(read_lock(lock), installed())
    assert not problems and not missing, f"{FIX} (or `make install`)\n" + "\n".join(problems + missing)


def _imports(path: Path):
    """Top-level module names imported by a file, except those under `try: ... except ImportError`."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                or isinstance(h.type, ast.Tuple) and any(getattr(e, "id", "") in ("ImportError", "ModuleNotFoundError")
                                                         for e in h.type.elts)
                for h in node.handlers):
            for inner in node.body:
                optional.update(id(n) for n in ast.walk(inner))
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0]


def test_every_imported_package_is_locked():
    """A test or module importing a package that only happens to be installed (here, by hand) breaks on
    CI's fresh venv, which holds exactly the lock."""
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    pins = read_lock(REPO / "requirements" / "test.txt")
    files = [p for d in ("jupyter_securellm", "tests", "benchmarks") for p in (REPO / d).rglob("*.py")]
    missing = {}
    for f in files:
        for mod in set(_imports(f)):
            if mod in sys.stdlib_module_names or mod == "jupyter_securellm":
                continue
            dists = {canonical(d) for d in owners.get(mod, ())}
            if dists and not dists & set(pins):
                missing.setdefault(", ".join(sorted(dists)), []).append(str(f.relative_to(REPO)))
    assert not missing, ("imported but not in pyproject.toml/the lock: add them to pyproject.toml, then "
                         "`make lock`\n" + "\n".join(f"{d}: {fs[:3]}" for d, fs in sorted(missing.items())))
