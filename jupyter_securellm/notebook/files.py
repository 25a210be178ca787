"""Files on disk: finding them (honouring .gitignore), reading them safely, writing them atomically."""
from __future__ import annotations

import os
import stat
import tempfile

import pathspec

#: GitHub refuses files over 100 MB; a notebook larger than that is refused here too unless asked for.
DEFAULT_MAX_SIZE = 100 * 1000 * 1000
_SNIFF = 8192


class InputError(Exception):
    """A file cannot be processed; the message is safe to print (it never holds file content)."""


def parse_size(value: str) -> int:
    """'100M', '2G', '512k', '0' (no limit) -> bytes."""
    v = value.strip().upper().removesuffix("B")
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}.get(v[-1:], 1)
    if mult != 1:
        v = v[:-1]
    try:
        n = float(v)
    except ValueError:
        raise ValueError(f"not a size: {value!r} (use e.g. 100M, 2G, or 0 for no limit)") from None
    if n < 0:
        raise ValueError(f"not a size: {value!r}")
    return int(n * mult)


def is_notebook_path(path: str) -> bool:
    return path.endswith(".ipynb")


def looks_binary(data: bytes) -> bool:
    return b"\0" in data[:_SNIFF]


def read_input(path: str, max_size: int) -> bytes:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file")
    if max_size and st.st_size > max_size:
        raise InputError(
            f"{path}: {st.st_size / 1e6:.1f} MB is larger than the limit of {max_size / 1e6:.0f} MB "
            "(raise it with --max-size SIZE, or --max-size 0 for no limit)"
        )
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def decode_notebook(data: bytes, name: str) -> str:
    if looks_binary(data):
        raise InputError(f"{name}: not a notebook (binary content)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not a notebook (not UTF-8 at byte {exc.start})") from None


def decode_text(data: bytes) -> str:
    """Text as UTF-8; undecodable bytes survive a round trip through surrogateescape."""
    return data.decode("utf-8", "surrogateescape")


def encode_text(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def check_writable(path: str) -> None:
    """Refuse read-only files even as root: the mode bits say the owner wants it left alone."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot stat ({exc.strerror})") from None
    if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
        raise InputError(f"{path}: read-only file; not modified (make it writable to scrub it)")
    if not os.access(os.path.dirname(os.path.abspath(path)) or ".", os.W_OK):
        raise InputError(f"{path}: directory is not writable; not modified")


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` through a temporary file in the same directory (mode kept).

    A symlink is followed: its target is rewritten and the link stays a link.
    """
    path = os.path.realpath(path)
    st = os.stat(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".securellm-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------------------------- discovery


def _git_top(start: str) -> str | None:
    d = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(d, ".git")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _load_spec(path: str):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return pathspec.GitIgnoreSpec.from_lines(lines) if any(line.strip() for line in lines) else None


class _Ignore:
    """Nested .gitignore files (plus .git/info/exclude), evaluated the way git does: deepest match wins."""

    def __init__(self, root: str):
        self.specs: list = []  # (base dir, spec)
        top = _git_top(root)
        if top is not None:
            spec = _load_spec(os.path.join(top, ".git", "info", "exclude"))
            if spec:
                self.specs.append((top, spec))
            # .gitignore files of the directories above root, up to the work tree top
            d, ancestors = os.path.abspath(root), []
            while d != top:
                d = os.path.dirname(d)
                ancestors.append(d)
            for a in reversed(ancestors):
                self._add(a)

    def _add(self, directory: str):
        spec = _load_spec(os.path.join(directory, ".gitignore"))
        if spec:
            self.specs.append((directory, spec))

    def ignored(self, path: str, is_dir: bool) -> bool:
        verdict = False
        for base, spec in self.specs:
            if not (path == base or path.startswith(base + os.sep)):
                continue
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            if is_dir:
                rel += "/"
            res = spec.check_file(rel)
            if res.include is not None:
                verdict = res.include
        return verdict


def iter_paths(root: str, use_gitignore: bool = True):
    """Files under ``root`` in sorted order, skipping .git and (optionally) what .gitignore ignores.

    """
    ignore = _Ignore(root) if use_gitignore else None
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if ignore is not None:
            ignore._add(os.path.abspath(dirpath))
        keep = []
        for d in dirnames:
            if d == ".git":
                continue
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                continue
            if ignore is not None and ignore.ignored(os.path.abspath(full), True):
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            if ignore is not None and ignore.ignored(os.path.abspath(full), False):
                continue
            yield full
