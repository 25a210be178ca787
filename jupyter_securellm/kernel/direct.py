"""Direct mode: no Jupyter server, the kernel reads Vault itself and calls litellm.

Trust tier 1 only (accidental exposure): the provider key is held in this kernel's memory while a
call runs, so code in the kernel could read it. Use broker mode for tiers 2 and 3. Even here the
key never goes into os.environ: it is passed to litellm as `api_key=` and registered with the
redactor. The Vault token comes from a file (`~/.vault-token` by default), not the environment.
"""
from __future__ import annotations

import os

from .client import SecureLLMError


def _read_token(path: str) -> str:
    path = os.path.expanduser(path)
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError:
        raise SecureLLMError("vault_unavailable", f"Direct mode: cannot read the Vault token file {path}; "
                             "log in with `bao login` / `vault login` or set SecureLLMMagics.vault_token_path.") from None
    if not token:
        raise SecureLLMError("vault_unavailable", f"Direct mode: the Vault token file {path} is empty.")
    return token


class DirectBackend:
    """Same interface as BrokerClient (models, status, secret, complete, stream)."""

    mode = "direct"

    def __init__(self, vault_url: str, token_path: str, kv_mount: str, models: dict,
                 namespace: str = "", timeout: float = 120.0):
        self.vault_url = vault_url
        self.token_path = token_path
        self.kv_mount = kv_mount
        self.model_map = dict(models)
        self.namespace = namespace or None
        self.timeout = timeout

    @classmethod
    def from_magics(cls, magics) -> "DirectBackend":
        url = magics.vault_url or os.environ.get("VAULT_ADDR") or os.environ.get("BAO_ADDR") or ""
        if not url:
            raise SecureLLMError("no_broker", "Direct mode needs a Vault address: "
                                 "%config SecureLLMMagics.vault_url = 'https://vault:8200' (or set VAULT_ADDR).")
        if not magics.models:
            raise SecureLLMError("no_broker", "Direct mode needs models: %config SecureLLMMagics.models = "
                                 "{'alias': {'model': ..., 'secret_path': ..., 'secret_key': ...}}.")
        return cls(url, magics.vault_token_path, magics.vault_kv_mount, magics.models,
                   magics.vault_namespace, magics.timeout)

    # -- Vault (the shared adapter, jupyter_securellm.vault; nothing cached in the kernel)
    def _vault(self):
        from ..vault import VaultClient, VaultSettings
        from .redaction import add_secret

        settings = VaultSettings(url=self.vault_url, namespace=self.namespace, auth_method="token",
                                 token_path=os.path.expanduser(self.token_path), kv_mount=self.kv_mount,
                                 secret_cache_ttl=0, timeout=min(self.timeout, 30.0))
        return VaultClient(settings, on_secret=add_secret)

    def _read(self, path: str, key: str) -> str:
        from .. import vault as v

        _read_token(self.token_path)  # a clear message for the usual mistake, before any request
        client = self._vault()
        try:
            return client.read_secret(path, key)
        except (v.VaultPermissionDenied, v.VaultAuthError):
            raise SecureLLMError("policy_denied", f"Direct mode: your Vault token may not read {path!r}.") from None
        except v.SecretNotFound:
            raise SecureLLMError("not_found", f"Direct mode: no field {key!r} at {path!r} in mount "
                                 f"{self.kv_mount!r}.") from None
        except v.VaultSealed:
            raise SecureLLMError("vault_unavailable", "Direct mode: Vault is sealed; ask your admin to unseal it.") from None
        except v.VaultError as exc:
            raise SecureLLMError("vault_unavailable", f"Direct mode: cannot read Vault at {self.vault_url} "
                                 f"({exc.__class__.__name__}).") from None
        finally:
            client.close()

    # -- interface
    def models(self) -> list[str]:
        return list(self.model_map)

    def status(self) -> dict:
        vs = self._vault().status()  # never raises, never logs in
        reachable, sealed = vs["reachable"], vs["sealed"]
        return {"broker": "direct mode (no server; key read into the kernel)", "version": _version(),
                "user": os.environ.get("USER", ""),
                "vault": {"url": self.vault_url, "reachable": reachable, "sealed": sealed, "auth_method": "token"},
                "models": self.models(), "budget": None, "alerts": []}

    def secret(self, path: str, key: str) -> str:
        return self._read(path, key)

    def _call(self, body: dict, stream: bool):
        alias = body.get("model")
        spec = self.model_map.get(alias)
        if spec is None:
            raise SecureLLMError("not_found", f"Unknown model alias {alias!r}; configured: {', '.join(self.model_map)}.")
        api_key = self._read(spec["secret_path"], spec.get("secret_key", "api_key"))
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        kwargs = {k: v for k, v in body.items() if k in ("messages", "temperature", "max_tokens")}
        if spec.get("api_base"):
            kwargs["api_base"] = spec["api_base"]
        try:
            return litellm.completion(model=spec["model"], api_key=api_key, stream=stream,
                                      timeout=self.timeout, **kwargs)
        except Exception as exc:  # litellm's exception text may embed the key: map, never echo
            raise _map_litellm(exc) from None

    def complete(self, body: dict) -> dict:
        resp = self._call(body, stream=False)
        return resp.model_dump() if hasattr(resp, "model_dump") else dict(resp)

    def stream(self, body: dict):
        resp = self._call(body, stream=True)
        try:
            for chunk in resp:
                yield chunk.model_dump() if hasattr(chunk, "model_dump") else chunk
        except Exception as exc:
            raise _map_litellm(exc) from None


def _map_litellm(exc) -> SecureLLMError:
    name = type(exc).__name__
    table = {"AuthenticationError": "provider_auth", "RateLimitError": "rate_limited", "Timeout": "timeout",
             "APITimeoutError": "timeout", "BadRequestError": "invalid_request", "NotFoundError": "not_found",
             "PermissionDeniedError": "provider_auth"}
    return SecureLLMError(table.get(name, "provider_error"))


def _version() -> str:
    from .._version import __version__

    return __version__
