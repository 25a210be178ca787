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


class VaultTimeout(VaultUnavailable):
    """Vault did not answer within the client's timeout (``c.SecureLLM.vault_timeout``, in ``timeout``)."""

    def __init__(self, message: str, *, timeout: float, **kw):
        super().__init__(message, **kw)
        self.timeout = timeout


class VaultTLSError(VaultUnavailable):
    """The TLS handshake with Vault failed; ``kind`` says which check (see `tls_kind`)."""

    def __init__(self, message: str, *, kind: str, **kw):
        super().__init__(message, **kw)
        self.kind = kind


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
    timeout: float = 5.0
    login: bool = False

    @property
    def doing(self) -> str:
        """What the client was doing, for "... while <doing>": a login, or reading a path."""
        return f"logging in with {self.auth_method} auth" if self.login else f"reading {self.where}"


def _unreachable(exc, c):
    import requests

    if isinstance(exc, requests.exceptions.Timeout):
        return VaultTimeout(f"Vault at {c.url} timed out: no answer within {c.timeout:g} s (c.SecureLLM.vault_timeout) "
                            f"while {c.doing}; check that Vault is healthy, or raise vault_timeout if it is only slow",
                            timeout=c.timeout, path=c.path)
    return VaultUnavailable(f"Vault at {c.url} is unreachable (refused the connection) while {c.doing}; "
                            "check that Vault is running and vault_url is right", path=c.path)


def _down(exc, c):
    if "sealed" in " ".join(map(str, getattr(exc, "errors", None) or [])).lower():
        return VaultSealed(f"Vault at {c.url} is sealed; an operator must unseal it ({c.doing})",
                           path=c.path, status=503)
    return VaultUnavailable(f"Vault at {c.url} is unavailable (503) while {c.doing}" + c.detail(exc),
                            path=c.path, status=503)


def _ssl_cause(exc: BaseException):
    """The ``ssl.SSLError`` inside a requests/urllib3 error (they nest it in args, ``reason`` or causes)."""
    import ssl

    seen, todo = set(), [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLError):
            return e
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        todo.extend(x for x in (getattr(e, "reason", None), e.__cause__, e.__context__)
                    if isinstance(x, BaseException))
    return None


def tls_kind(exc: BaseException) -> str | None:
    """Which TLS check failed, from the SSL error's verify_message / reason; None if `exc` holds no SSL error.

    One of: "unknown CA", "expired certificate", "host name mismatch", "client certificate rejected",
    "handshake closed by the server", "certificate verify failed", "TLS handshake failed". Shared by
    the Vault client and the broker's provider calls (server/provider.py), which add their own advice.
    """
    import ssl

    err = _ssl_cause(exc)
    if err is None:
        return None
    verify = (getattr(err, "verify_message", None) or "").lower()
    reason = (getattr(err, "reason", None) or "").lower()
    text = f"{verify} {reason} {err}".lower()
    if not verify and "certificate verify failed" in text:  # wrapped (aiohttp): the verify message is in the text
        verify = text
    if "expired" in verify or "not yet valid" in verify:
        return "expired certificate"
    if "mismatch" in verify or "hostname" in verify:
        return "host name mismatch"
    if any(k in verify for k in ("issuer", "self-signed", "self signed", "untrusted", "unable to get")):
        return "unknown CA"
    if any(k in text for k in ("certificate required", "bad certificate", "unknown ca", "handshake failure",
                               "certificate_required", "alert")):
        return "client certificate rejected"
    if isinstance(err, ssl.SSLEOFError) or "eof occurred" in text:
        return "handshake closed by the server"
    if "certificate verify failed" in text:
        return "certificate verify failed"
    return "TLS handshake failed"


_VAULT_TLS_ADVICE = {
    "expired certificate": ("expired certificate", "Vault's certificate is outside its validity period; renew it "
                            "(or check this machine's clock)"),
    "host name mismatch": ("host name mismatch", "Vault's certificate does not name the host in vault_url; use the "
                           "name the certificate was issued for, or reissue it with that name"),
    "unknown CA": ("unknown CA", "Vault's certificate is signed by a CA this server does not trust; set "
                   "c.SecureLLM.vault_ca_cert to the CA that signed it"),
    "client certificate rejected": ("client certificate rejected", "Vault requires a client certificate it trusts "
                                    "(mutual TLS); set c.SecureLLM.vault_client_cert and vault_client_key"),
    "handshake closed by the server": (
        "handshake closed by Vault", "Vault hung up during the TLS handshake; this is what it does when it requires a "
        "client certificate and does not trust the one in vault_client_cert (or none was set), or when vault_url "
        "points at something that is not Vault's TLS listener"),
    "certificate verify failed": ("certificate verify failed", "Vault's certificate did not verify; check "
                                  "vault_ca_cert"),
}


def tls_failure(exc: BaseException) -> tuple[str, str]:
    """(kind, advice) for a TLS failure talking to Vault (kind as in `tls_kind`, "by Vault" for a hang-up)."""
    return _VAULT_TLS_ADVICE.get(tls_kind(exc) or "", (
        "TLS handshake failed", "check vault_url, vault_ca_cert and, for mutual TLS, vault_client_cert"))


def _tls(exc, c):
    kind, advice = tls_failure(exc)
    return VaultTLSError(f"Vault at {c.url}: TLS failed ({kind}) while {c.doing}: {advice}", kind=kind, path=c.path)


def _table():
    """(exception classes, applies to: "login" | "read" | None for both, builder), first match wins."""
    import hvac.exceptions as hx
    import requests.exceptions as rq

    return (
        ((rq.SSLError,), None, _tls),
        ((rq.ConnectionError, rq.Timeout), None,
         lambda e, c: _tls(e, c) if _ssl_cause(e) is not None else _unreachable(e, c)),
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
