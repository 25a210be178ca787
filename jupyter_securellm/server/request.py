"""Typed, frozen inputs of the broker: `ModelConfig` (built once at start-up) and `ChatRequest` (per call).

Why frozen: after start-up nothing a request does can change where a model's key goes, and after
validation nothing later in the pipeline can slip a parameter past the checks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping
from urllib.parse import urlsplit

from ..vault.errors import VaultConfigError
from ..vault.paths import candidate_paths
from .egress import PROVIDER_DEFAULT_HOSTS, provider_of, split_host
from .errors import BrokerError
from .schema import CHAT_SCHEMA, validate

#: Body fields that are not provider parameters.
RESERVED = frozenset({"model", "messages", "stream", "api_base"})

MODEL_KEYS_REQUIRED = ("model", "secret_path", "secret_key")
MODEL_KEYS_OPTIONAL = ("api_base", "allow_http", "ca_bundle", "ssl_verify", "stream_usage")
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Providers whose calls go through the broker's pooled client (litellm.aclient_session), where per-model TLS lives.
TLS_PROVIDERS = frozenset({"openai"})


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """One entry of `c.SecureLLM.models`, checked. `host`/`port` are where its key may travel."""

    alias: str
    model: str
    secret_path: str
    secret_key: str
    api_base: str = ""
    allow_http: bool = False
    ca_bundle: str = ""         # PEM file (or c_rehash directory) of the CA that signed the endpoint's certificate
    ssl_verify: bool = True     # False only by an explicit, loudly reported choice (docs/broker.md#tls-to-a-model)
    stream_usage: bool = True   # ask the provider for a stream's usage (budgets settle with real tokens)

    @property
    def tls_verify(self) -> bool | str:
        """What verifies this model's endpoint: its CA bundle (a path), True (the default trust) or False."""
        if not self.ssl_verify:
            return False
        return self.ca_bundle or True

    @property
    def origin(self) -> tuple[str, str, int]:
        """(scheme, host, port) of the endpoint, the port filled in; the key of its TLS settings."""
        host, port = self.endpoint
        scheme = urlsplit(self.api_base).scheme if self.api_base else "https"
        return scheme, host, port or _DEFAULT_PORTS.get(scheme, 443)

    @property
    def endpoint(self) -> tuple[str, int | None]:
        """(host, port) of the configured api_base, or the provider's official host (port None)."""
        if self.api_base:
            return split_host(self.api_base)
        return PROVIDER_DEFAULT_HOSTS.get(provider_of(self.model) or "", ""), None

    @classmethod
    def from_trait(cls, alias: Any, value: Any) -> "ModelConfig":
        """Build from one `models` entry; ValueError names the entry and what is wrong."""
        if not isinstance(alias, str) or not alias or "/" in alias:
            raise ValueError(f"alias {alias!r} must be a non-empty string without '/'.")
        where = f"[{alias!r}]"
        if not isinstance(value, dict):
            raise ValueError(f"{where}: must be a dict with keys {', '.join(MODEL_KEYS_REQUIRED)}.")
        for k in MODEL_KEYS_REQUIRED:
            if not isinstance(value.get(k), str) or not value[k]:
                raise ValueError(f"{where}: {k!r} is required and must be a non-empty string.")
        extra = set(value) - set(MODEL_KEYS_REQUIRED) - set(MODEL_KEYS_OPTIONAL)
        if extra:
            raise ValueError(f"{where}: unknown key(s) {sorted(extra)}; allowed: "
                             f"{list(MODEL_KEYS_REQUIRED + MODEL_KEYS_OPTIONAL)}.")
        for flag in ("allow_http", "ssl_verify", "stream_usage"):
            if flag in value and not isinstance(value[flag], bool):
                raise ValueError(f"{where}: {flag!r} must be True or False.")
        ca_bundle = value.get("ca_bundle") or ""
        if not isinstance(ca_bundle, str):
            raise ValueError(f"{where}: 'ca_bundle' must be the path of a PEM file.")
        api_base = value.get("api_base") or ""
        if not isinstance(api_base, str):
            raise ValueError(f"{where}: 'api_base' must be a URL string.")
        try:
            candidate_paths(value["secret_path"], None if "{user}" not in value["secret_path"] else "u")
        except VaultConfigError as exc:
            raise ValueError(f"{where}: secret_path: {exc}.") from None
        cfg = cls(alias=alias, model=value["model"], secret_path=value["secret_path"],
                  secret_key=value["secret_key"], api_base=api_base, allow_http=bool(value.get("allow_http")),
                  ca_bundle=os.path.expanduser(ca_bundle) if ca_bundle else "",
                  ssl_verify=value.get("ssl_verify", True), stream_usage=value.get("stream_usage", True))
        try:
            host, port = cfg.endpoint
        except ValueError as exc:
            raise ValueError(f"{where}: api_base {exc}.") from None
        if not host:
            raise ValueError(f"{where}: no api_base and the provider of {cfg.model!r} has no known host; "
                             "set api_base.")
        cfg._check_tls(where)
        return cfg

    def _check_tls(self, where: str) -> None:
        """ca_bundle: a readable PEM file (or CA directory), for an https endpoint, and not with ssl_verify False."""
        if not self.ca_bundle and self.ssl_verify:
            return
        if provider_of(self.model) not in TLS_PROVIDERS:
            raise ValueError(f"{where}: 'ca_bundle'/'ssl_verify' work for OpenAI-compatible models ('openai/...') "
                             f"only; litellm builds the HTTP client of {self.model!r} itself, so the setting would "
                             "not reach it. Serve that endpoint with a certificate the system trusts.")
        if self.origin[0] != "https":
            what = "'ca_bundle'" if self.ca_bundle else "'ssl_verify'"
            raise ValueError(f"{where}: {what} applies to an https api_base only; this one is plain http.")
        if self.ca_bundle and not self.ssl_verify:
            raise ValueError(f"{where}: 'ca_bundle' and 'ssl_verify': False contradict each other; keep "
                             "'ca_bundle' (verification against that CA) and remove 'ssl_verify'.")
        if self.ca_bundle:
            if not (os.path.isfile(self.ca_bundle) or os.path.isdir(self.ca_bundle)):
                raise ValueError(f"{where}: 'ca_bundle' {self.ca_bundle!r} is not a file; give the path of the PEM "
                                 "file of the CA that signed the model server's certificate.")
            if not os.access(self.ca_bundle, os.R_OK):
                raise ValueError(f"{where}: 'ca_bundle' {self.ca_bundle!r} is not readable by this server's user.")

    def check_transport(self) -> None:
        """ValueError unless the key travels over https, or plain http was allowed for this model."""
        if self.api_base.lower().startswith("http://") and not self.allow_http:
            host, port = self.endpoint
            label = f"{host}:{port}" if port else host
            raise ValueError(
                f"[{self.alias!r}]: api_base is plain http: the key would travel unencrypted, and any process on "
                f"this machine that binds {label} while the model server is down would receive it. Use "
                "https, or set \"allow_http\": True for a local endpoint you trust (docs/broker.md).")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat/completions body: the model alias, messages, stream flag and allowed params."""

    model: ModelConfig
    messages: tuple
    stream: bool = False
    api_base: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Any, models: Mapping[str, ModelConfig]) -> "ChatRequest":
        """Check a body against the schema (400) and the configured aliases (404), one sentence each."""
        validate(body, CHAT_SCHEMA)
        alias = body["model"]
        if alias not in models:
            known = ", ".join(sorted(models)) or "none configured"
            raise BrokerError("not_found", f"Unknown model alias {alias!r}; available: {known}.")
        msgs = body["messages"]
        params = {k: v for k, v in body.items() if k not in RESERVED}
        return cls(model=models[alias], messages=tuple(msgs), stream=bool(body.get("stream")),
                   api_base=body.get("api_base"), params=MappingProxyType(params))
