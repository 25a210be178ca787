"""What is installed: distributions on sys.path, their files, requirement files with pins.

Shared by the environment checks and by the tests that prove the lock is what `make test`
installed. Standard library only, so it works in any interpreter the doctor runs in.
"""
from __future__ import annotations

import hashlib
import base64
import importlib.metadata as md
import os
import re
from dataclasses import dataclass
from pathlib import Path


def canonical(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Installed:
    name: str       # canonical
    version: str
    location: str   # the sys.path entry holding its .dist-info


def installed(path=None) -> list[Installed]:
    """Every distribution on `path` (default sys.path), duplicates included: a second copy of a
    package further down the path is still on disk and still runs its .pth files."""
    out = []
    for dist in md.distributions(**({"path": path} if path is not None else {})):
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        loc = str(getattr(dist, "_path", "") and Path(dist._path).parent)
        out.append(Installed(canonical(name), dist.version, loc))
    return out


def pth_owners(sitedir: str, names) -> dict[str, tuple[str, str, str | None]]:
    """.pth file name -> (distribution, version, recorded sha256 or None), from the RECORD files.

    A .pth file sits at the top of site-packages, so its RECORD line is `<name>.pth,sha256=...,size`;
    reading RECORD as text (not every dist's file list) keeps this fast on a large environment.
    """
    wanted = set(names)
    owners = {}
    for info in Path(sitedir).glob("*.dist-info"):
        try:
            record = (info / "RECORD").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in record.splitlines():
            fname, _, rest = line.partition(",")
            if fname in wanted:
                digest = rest.split(",", 1)[0]
                digest = digest[len("sha256="):] if digest.startswith("sha256=") else None
                meta = _name_version(info)
                owners[fname] = (meta[0], meta[1], digest)
    return owners


def _name_version(info: Path) -> tuple[str, str]:
    name, version = info.name[: -len(".dist-info")].rsplit("-", 1) if "-" in info.name else (info.name, "?")
    try:
        for line in (info / "METADATA").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Name:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("Version:"):
                version = line.split(":", 1)[1].strip()
            elif not line.strip():
                break
    except OSError:
        pass
    return canonical(name), version


def record_hash(path: str) -> str:
    """The RECORD-style digest of a file: urlsafe base64 of sha256, no padding."""
    h = hashlib.sha256(Path(path).read_bytes()).digest()
    return base64.urlsafe_b64encode(h).rstrip(b"=").decode()


class LockError(ValueError):
    pass


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*===?\s*([^\s;\\]+)")


def read_lock(path: str) -> dict[str, str]:
    """{canonical name: version} from a pip-compile style requirements file (hashes allowed).

    Only exact pins are a lock: a line that is not `name==version` (a range, a URL, -e) is an error,
    because whatever it lets in is unlocked.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LockError(f"{path}: cannot read the lock ({exc.strerror})") from None
    pins: dict[str, str] = {}
    logical = re.sub(r"\\\n", " ", text)
    for n, line in enumerate(logical.splitlines(), 1):
        line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not line or line.startswith(("--hash", "--index-url", "--extra-index-url", "--no-binary",
                                        "--only-binary", "--find-links", "--trusted-host", "--prefer-binary")):
            continue
        if line.startswith("-"):
            raise LockError(f"{path}: {line.split()[0]} is not a pin; a lock holds only name==version lines")
        m = _PIN.match(line)
        if not m:
            raise LockError(f"{path}: {line.split()[0]!r} is not pinned with =="
                            " (regenerate the lock: make lock)")
        pins[canonical(m.group(1))] = m.group(3)
    return pins
