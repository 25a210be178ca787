"""Vault/OpenBao access, shared by the server's broker and the kernel's direct mode.

- `client.VaultClient`: thread-safe, synchronous (hvac) client with auth, renewal and a secret cache.
- `settings.VaultSettings`: what it needs; the Vault auth rules are checked there and only there.
- `paths`: the ``{user}`` rule for KV paths.
- `errors`: our exception classes and the one table mapping hvac/requests errors onto them.

Importing this package does not import hvac (that happens when a client is built).
"""
from __future__ import annotations

from .client import VaultClient
from .errors import (SecretNotFound, VaultAuthError, VaultConfigError, VaultError, VaultPermissionDenied,
                     VaultSealed, VaultTimeout, VaultTLSError, VaultUnavailable)
from .paths import candidate_paths, resolves_to, sanitize_user, shared_path
from .settings import AUTH_METHODS, K8S_TOKEN_PATH, VaultSettings

__all__ = [
    "AUTH_METHODS", "K8S_TOKEN_PATH", "SecretNotFound", "VaultAuthError", "VaultClient", "VaultConfigError",
    "VaultError", "VaultPermissionDenied", "VaultSealed", "VaultSettings", "VaultTimeout", "VaultTLSError",
    "VaultUnavailable",
    "candidate_paths", "resolves_to", "sanitize_user", "shared_path",
]
