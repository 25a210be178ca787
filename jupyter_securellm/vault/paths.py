"""The ``{user}`` rule for KV paths, owned here and used by the client and the broker's secret ACL.

A KV path may contain ``{user}``. It is replaced with the sanitized user name (characters outside
``[A-Za-z0-9_.@-]`` become ``_``; leading dots too) and that path is read first. If that secret does
not exist (or lacks the requested key), the shared path is read instead: the ``fallback_path``
argument if given, else the same path with the path segment that is exactly ``{user}`` removed
(``llm/{user}/openai`` -> ``llm/openai``). A ``{user}`` inside a longer segment (``llm/openai-{user}``)
has no automatic fallback. Without a user only the shared path is read.
"""
from __future__ import annotations

import fnmatch
import re

from .errors import VaultConfigError

_USER_BAD = re.compile(r"[^A-Za-z0-9_.@-]")


def sanitize_user(user: str) -> str:
    """A user name made safe as one KV path segment (no '/', no '..', no leading dot)."""
    if not user or not str(user).strip():
        raise ValueError("user name is empty")
    clean = _USER_BAD.sub("_", str(user).strip())[:128]
    return re.sub(r"^\.+", lambda m: "_" * len(m.group()), clean)


def _check_path(path: str) -> str:
    p = path.strip().strip("/")
    if not p or any(seg in ("", ".", "..") for seg in p.split("/")):
        raise VaultConfigError(f"Vault secret path {path!r} is not a valid KV path", path=path)
    if re.search(r"\{(?!user\})[^}]*\}", p):
        raise VaultConfigError(f"Vault secret path {path!r}: only the {{user}} placeholder is supported",
                               path=path)
    return p


def candidate_paths(path: str, user: str | None = None, fallback_path: str | None = None) -> list[str]:
    """The KV paths to try, in order, following the ``{user}`` rule in the module docstring."""
    path = _check_path(path)
    shared = _check_path(fallback_path) if fallback_path else None
    if "{user}" not in path:
        return [path] + ([shared] if shared and shared != path else [])
    if shared is None:
        segs = path.split("/")
        if "{user}" in segs and len(segs) > 1:
            shared = "/".join(s for s in segs if s != "{user}")
            if "{user}" in shared:
                shared = None
    if user is None:
        if shared is None:
            raise VaultConfigError(f"Vault secret path {path!r} needs a user name and has no shared "
                                   "fallback", path=path)
        return [shared]
    return [path.replace("{user}", sanitize_user(user))] + ([shared] if shared else [])



def shared_path(template: str) -> str | None:
    """The shared fallback of a template: the segment that is exactly ``{user}`` removed, if any."""
    segs = _check_path(template).split("/")
    if "{user}" not in segs or len(segs) < 2:
        return None
    shared = "/".join(s for s in segs if s != "{user}")
    return None if "{user}" in shared else shared


def resolves_to(template: str, path: str) -> bool:
    """Whether reading ``template`` for SOME user could read ``path``: any user's path or the shared one.

    ``{user}`` matches anything here (even across ``/``), broader than any sanitized user name, so
    a path is never wrongly judged to be outside a template. The broker uses this to keep provider
    key paths out of ``secrets.get``.
    """
    tpl = _check_path(template)
    p = path.strip().strip("/")
    return p == shared_path(tpl) or fnmatch.fnmatchcase(p, tpl.replace("{user}", "*"))
