"""What the broker (or a direct-mode kernel) needs to reach Vault; the Vault auth rules live here only."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import VaultConfigError

AUTH_METHODS = ("token", "approle", "jwt", "kubernetes")
K8S_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
MAX_TIMEOUT = 120.0  # a Vault read holds a broker worker thread (and the call) this long at most


@dataclass
class VaultSettings:
    """What the broker needs to reach Vault. Field names follow ``c.SecureLLM.vault_*``."""

    url: str = "http://127.0.0.1:8200"
    namespace: str | None = None            # sent as X-Vault-Namespace (OpenBao >= 2.3 has namespaces)
    auth_method: str = "token"              # token | approle | jwt | kubernetes
    token_path: str | None = None           # token: file holding the token (else $VAULT_TOKEN)
    approle_role_id: str | None = None
    approle_secret_id_path: str | None = None  # plain secret id or a response-wrapping token
    approle_secret_id_wrapped: bool | None = None  # None: auto (a UUID is plain, else wrapped)
    jwt_path: str | None = None             # jwt/kubernetes: file holding the JWT (re-read per login)
    role: str | None = None                 # jwt/kubernetes role
    auth_mount: str | None = None           # defaults to the method name
    kv_mount: str = "secret"
    secret_cache_ttl: float = 300.0
    verify: bool = True                     # TLS verification of Vault's certificate
    ca_cert: str | None = None              # CA bundle file or directory (implies verify)
    client_cert: str | None = None
    client_key: str | None = None
    timeout: float = 5.0                    # seconds per Vault request (c.SecureLLM.vault_timeout)
    renew_fraction: float = 1 / 3           # renew when remaining TTL < this fraction of the TTL

    @property
    def mount(self) -> str:
        return (self.auth_mount or self.auth_method).strip("/")

    def validate(self) -> None:
        def need(cond, name, why):
            if not cond:
                raise VaultConfigError(f"Vault setting {name} {why}")

        need(self.url and re.match(r"^https?://", self.url), "vault_url",
             f"must be an http(s) URL, got {self.url!r}")
        need(self.auth_method in AUTH_METHODS, "vault_auth_method",
             f"must be one of {', '.join(AUTH_METHODS)}, got {self.auth_method!r}")
        if self.auth_method == "approle":
            need(self.approle_role_id, "vault_approle_role_id", "is required for approle auth")
            need(self.approle_secret_id_path, "vault_approle_secret_id_path",
                 "is required for approle auth (a file with the secret id or a wrapping token)")
        if self.auth_method == "jwt":
            need(self.jwt_path, "vault_jwt_path", "is required for jwt auth (a file with the JWT)")
            need(self.role, "vault_role", "is required for jwt auth")
        if self.auth_method == "kubernetes":
            need(self.role, "vault_role", "is required for kubernetes auth")
        need(self.kv_mount and "/" not in self.kv_mount.strip("/"), "vault_kv_mount",
             f"must be a single mount name, got {self.kv_mount!r}")
        need(bool(self.client_cert) == bool(self.client_key), "vault_client_cert",
             "and vault_client_key go together for mutual TLS: set both or neither")
        need(self.secret_cache_ttl >= 0, "secret_cache_ttl", "must be >= 0 seconds")
        need(isinstance(self.timeout, (int, float)) and 0 < self.timeout <= MAX_TIMEOUT, "vault_timeout",
             f"must be more than 0 and at most {MAX_TIMEOUT:g} seconds, got {self.timeout!r}")
        need(0 < self.renew_fraction < 1, "renew_fraction", "must be between 0 and 1")

