"""Vault errors: our classes, and ONE table that maps hvac/requests exceptions onto them.

Messages are our own sentences naming Vault, the path and what to do. hvac's text is reduced to
Vault's ``errors`` list, scrubbed by the caller, because hvac's may carry URLs and tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


class VaultError(Exception):
    """Base class. ``path`` is the KV path involved (if any); ``status`` the HTTP status (if any)."""

    def __init__(self, message: str, *, path: str | None = None, status: int | None = None):
        super().__init__(message)
        self.path = path
        self.status = status


class VaultUnavailable(VaultError):
    """Vault could not be reached (connection refused, timeout, TLS failure, 5xx)."""


class VaultSealed(VaultUnavailable):
    """Vault answered but is sealed: an operator must unseal it."""


class VaultAuthError(VaultError):
    """Login failed or the configured credential is invalid/expired."""


class VaultPermissionDenied(VaultError):
    """Vault's policy denies this path to our identity (even after one fresh login)."""


class SecretNotFound(VaultError):
    """No secret (or no such key in it) at the path(s) tried."""


class VaultConfigError(VaultError, ValueError):
    """The settings are incomplete or contradictory; the message names the setting."""



@dataclass(frozen=True)
class Context:
    """What a mapped message may name: never a token or a value (``detail`` is already scrubbed)."""

    url: str
    where: str
    path: str | None
    namespace: str
    kv_mount: str
    login_hint: str
    auth_method: str
    detail: Callable[[BaseException], str]


def _unreachable(exc, c):
    import requests

    kind = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "refused the connection"
    return VaultUnavailable(f"Vault at {c.url} is unreachable ({kind}) while reading {c.where}; "
                            "check that Vault is running and vault_url is right", path=c.path)


def _down(exc, c):
    if "sealed" in " ".join(map(str, getattr(exc, "errors", None) or [])).lower():
        return VaultSealed(f"Vault at {c.url} is sealed; an operator must unseal it (reading {c.where})",
                           path=c.path, status=503)
    return VaultUnavailable(f"Vault at {c.url} is unavailable (503) while reading {c.where}" + c.detail(exc),
                            path=c.path, status=503)


def _table():
    """(exception classes, applies to: "login" | "read" | None for both, builder), first match wins."""
    import hvac.exceptions as hx
    import requests.exceptions as rq

    return (
        ((rq.SSLError,), None, lambda e, c: VaultUnavailable(
            f"Vault at {c.url}: TLS verification failed; set vault CA (ca_cert) to the CA that signed "
            "Vault's certificate", path=c.path)),
        ((rq.ConnectionError, rq.Timeout), None, _unreachable),
        ((hx.VaultDown,), None, _down),
        ((hx.VaultNotInitialized,), None, lambda e, c: VaultUnavailable(
            f"Vault at {c.url} is not initialised", path=c.path, status=501)),
        ((BaseException,), "login", lambda e, c: VaultAuthError(
            f"Vault login with {c.auth_method} at {c.url}{c.namespace} failed: {c.login_hint}" + c.detail(e),
            status=getattr(e, "status_code", None))),
        ((hx.Forbidden,), "read", lambda e, c: VaultPermissionDenied(
            f"Vault denied read access to {c.where}{c.namespace} for this server's identity even after a fresh "
            f"login; grant its policy 'read' on {c.kv_mount}/data/{c.path or '...'}" + c.detail(e),
            path=c.path, status=403)),
        ((hx.InvalidPath,), "read", lambda e, c: SecretNotFound(
            f"Vault has no secret at {c.where}{c.namespace}", path=c.path, status=404)),
        ((hx.Unauthorized,), "read", lambda e, c: VaultAuthError(
            f"Vault rejected this server's credentials while reading {c.where}" + c.detail(e),
            path=c.path, status=401)),
        ((hx.InternalServerError, hx.BadGateway, hx.RateLimitExceeded), "read", lambda e, c: VaultUnavailable(
            f"Vault at {c.url} failed while reading {c.where} ({type(e).__name__}); retry later" + c.detail(e),
            path=c.path)),
        ((hx.VaultError,), "read", lambda e, c: VaultError(
            f"Vault request for {c.where} failed ({type(e).__name__})" + c.detail(e), path=c.path)),
        ((BaseException,), "read", lambda e, c: VaultError(
            f"Vault request for {c.where} failed unexpectedly ({type(e).__name__})", path=c.path)),
    )


_TABLE = None


def map_exception(exc: BaseException, ctx: Context, *, login: bool) -> VaultError:
    """Our exception for an hvac/requests one (first row of the table that matches)."""
    global _TABLE
    if isinstance(exc, VaultError):
        return exc
    if _TABLE is None:
        _TABLE = _table()
    phase = "login" if login else "read"
    for classes, applies, build in _TABLE:
        if (applies is None or applies == phase) and isinstance(exc, classes):
            return build(exc, ctx)
    raise AssertionError("the last row matches everything")  # pragma: no cover
