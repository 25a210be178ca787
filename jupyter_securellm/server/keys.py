"""Secrets from Vault for the broker: off the event loop on a miss, Vault errors as contract errors.

A cached value is served on the event loop itself (`VaultClient.cached` takes only the cache lock);
a miss, a forced re-read or an expired entry goes to a worker thread, since hvac is synchronous.
Every value read is registered with the redactor (and so with the DLP scanner) before it is used.
"""
from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor

from ..vault import errors as verr
from .errors import BrokerError

# (Vault error class, broker error type, message) - first match wins; {path} {key} {what} filled in.
VAULT_ERRORS = (
    (verr.SecretNotFound, "not_found", "Vault has no field {key!r} at {path!r} ({what}); "
                                       "ask your admin to store it or fix the configuration."),
    (verr.VaultSealed, "vault_unavailable", "Vault is sealed and no cached value is valid; "
                                            "ask your admin to unseal Vault, then retry."),
    (verr.VaultTimeout, "vault_unavailable", "Vault did not answer within {timeout:g} s (c.SecureLLM.vault_timeout) "
                                             "and no cached value is valid; retry, or ask your admin to check Vault."),
    (verr.VaultTLSError, "vault_unavailable", "The server's TLS connection to Vault failed ({kind}) and no cached "
                                              "value is valid; ask your admin to check c.SecureLLM.vault_ca_cert "
                                              "and vault_url (the server log says what to change)."),
    (verr.VaultUnavailable, "vault_unavailable", "Vault is unreachable and no cached value is valid; "
                                                 "check c.SecureLLM.vault_url and that Vault is up, then retry."),
    (verr.VaultAuthError, "vault_unavailable", "The server could not log in to Vault; "
                                               "check the c.SecureLLM.vault_* auth settings."),
    (verr.VaultPermissionDenied, "vault_unavailable", "Vault denied reading {path!r}; ask your admin to grant "
                                                      "the server's Vault role read access."),
    (verr.VaultConfigError, "invalid_request", "The Vault path {path!r} or field {key!r} is not usable; "
                                               "check the path and field name."),
    (verr.VaultError, "vault_unavailable", "Vault returned an error while reading {what}; "
                                           "see the server log and retry."),
)


def sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


class KeySource:
    """Reads secrets for the broker and remembers which values are provider keys (by digest)."""

    def __init__(self, vault, redactor, *, log=None, max_workers: int = 8):
        self.vault = vault
        self.redactor = redactor
        self.log = log
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="securellm")
        self._known: set[str] = set()
        self.provider_key_digests: set[str] = set()

    async def run(self, fn, *args, **kwargs):
        """Run blocking `fn` on the broker's worker threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    def remember(self, value: str, provider_key: bool = False) -> None:
        """Register a secret with the redactor once (also the DLP scanner: same Scanner)."""
        if not value:
            return
        digest = sha(value)
        if provider_key:
            self.provider_key_digests.add(digest)
        if digest not in self._known:
            self.redactor.add_secret(value)
            self._known.add(digest)

    async def read(self, path: str, key: str, user: str, *, what: str, fresh: bool = False,
                   provider_key: bool = True) -> str:
        """The value of `key` at `path` for `user`; BrokerError naming Vault on failure."""
        try:
            value = None if fresh else self._cached(path, key, user)
            if value is None:
                if fresh:
                    await self.run(self.vault.invalidate, path)
                value = await self.run(self.vault.read_secret, path, key, user=user)
        except verr.VaultError as exc:
            if self.log:  # the client's messages carry no secrets; the log filter redacts anyway
                self.log.warning("SecureLLM: Vault error reading %s: %s: %s", what, type(exc).__name__, exc)
            raise vault_error(exc, path, key, what) from None
        self.remember(value, provider_key=provider_key)
        return value

    def _cached(self, path, key, user):
        cached = getattr(self.vault, "cached", None)  # a client without a cache: always a thread hop
        return cached(path, key, user=user) if cached is not None else None

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def vault_error(exc: verr.VaultError, path: str, key: str, what: str) -> BrokerError:
    for cls, type_, message in VAULT_ERRORS:
        if isinstance(exc, cls):
            return BrokerError(type_, message.format(path=path, key=key, what=what,
                                                     timeout=getattr(exc, "timeout", 0.0),
                                                     kind=getattr(exc, "kind", "")))
    raise AssertionError("VaultError is the last row")  # pragma: no cover
