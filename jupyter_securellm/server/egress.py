"""Egress allowlist: the provider key may only travel to hosts the admin listed.

A caller who could point `api_base` at a host of their choice would receive the provider
key in the `Authorization` header: that is the classic exfiltration path. So the broker
resolves the effective endpoint itself and checks it against `allowed_hosts` before any
byte leaves; a request may not move `api_base` to another host.
"""
from __future__ import annotations

import fnmatch
from urllib.parse import urlsplit

from .errors import BrokerError

# Official endpoints litellm uses when a model has no `api_base`. Anything else needs an
# explicit `api_base` in `c.SecureLLM.models` so the admin sees (and allowlists) the host.
PROVIDER_DEFAULT_HOSTS = {
    "openai": "api.openai.com",
    "text-completion-openai": "api.openai.com",
    "anthropic": "api.anthropic.com",
    "gemini": "generativelanguage.googleapis.com",
    "mistral": "api.mistral.ai",
    "groq": "api.groq.com",
    "cohere": "api.cohere.com",
    "cohere_chat": "api.cohere.com",
    "deepseek": "api.deepseek.com",
    "xai": "api.x.ai",
    "openrouter": "openrouter.ai",
    "together_ai": "api.together.xyz",
    "perplexity": "api.perplexity.ai",
    "fireworks_ai": "api.fireworks.ai",
}

DEFAULT_ALLOWED_HOSTS = [
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "api.mistral.ai",
]

_OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "ft:gpt")


def provider_of(model: str) -> str | None:
    """The litellm provider of a model string, without importing litellm (it is heavy)."""
    if "/" in model:
        return model.split("/", 1)[0]
    if model.startswith(_OPENAI_PREFIXES):
        return "openai"
    if model.startswith("claude"):
        return "anthropic"
    return None


def split_host(url: str) -> tuple[str, int | None]:
    """(host, port) of an http(s) URL; raises ValueError on anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host: {parts.scheme or '?'}://{parts.hostname or '?'}")
    if parts.username or parts.password:
        raise ValueError("credentials inside the URL are not allowed")
    return parts.hostname.lower(), parts.port


def host_allowed(host: str, port: int | None, allowed: list[str]) -> bool:
    """Entries are `host`, `host:port` or `*.domain` (any port unless one is given)."""
    host = host.lower().strip("[]")
    for entry in allowed:
        entry = entry.strip().lower()
        e_host, e_port = entry, None
        if entry.count(":") == 1 or (entry.startswith("[") and "]:" in entry):
            e_host, _, p = entry.rpartition(":")
            try:
                e_port = int(p)
            except ValueError:
                continue
        e_host = e_host.strip("[]")
        if e_port is not None and e_port != port:
            continue
        if e_host == host or (e_host.startswith("*.") and fnmatch.fnmatchcase(host, e_host)):
            return True
    return False


def endpoint_for(model, allowed: list[str], request_api_base: str | None = None) -> tuple[str, str]:
    """Return (api_base or "", host) for a call with `model` (a ModelConfig), refusing anything off `allowed`."""
    configured = model.api_base or ""
    if configured:
        host, port = split_host(configured)
        if urlsplit(configured).scheme == "http" and not model.allow_http:
            raise BrokerError(
                "egress_denied",
                f"The model's api_base {host} is plain http and the model does not set allow_http: the key "
                "would travel unencrypted and any process that binds that port would receive it. Ask your "
                "admin to use https (or, for a trusted local endpoint, set \"allow_http\": true).",
            )
    else:
        provider = provider_of(model.model)
        host = PROVIDER_DEFAULT_HOSTS.get(provider or "")
        port = None
        if host is None:
            raise BrokerError(
                "egress_denied",
                f"The model {model.model!r} has no api_base and its provider's host is unknown; "
                "set api_base for it in c.SecureLLM.models and add that host to c.SecureLLM.allowed_hosts.",
            )
    if request_api_base:
        try:
            r_host, r_port = split_host(request_api_base)
        except ValueError as exc:
            raise BrokerError("invalid_request", f"api_base is not usable: {exc}.") from None
        r_scheme = urlsplit(request_api_base).scheme
        c_scheme = urlsplit(configured).scheme if configured else "https"
        if (r_scheme, r_host, r_port) != (c_scheme, host, port) or not host_allowed(r_host, r_port, allowed):
            raise BrokerError(
                "egress_denied",
                f"api_base may not point at {r_host}: requests cannot move a model to another host; "
                "ask your admin to configure the model with that api_base and allowlist the host.",
            )
        configured = request_api_base
    if not host_allowed(host, port, allowed):
        label = f"{host}:{port}" if port else host
        raise BrokerError(
            "egress_denied",
            f"The provider host {label} is not in c.SecureLLM.allowed_hosts; ask your admin to allowlist it.",
        )
    return configured, host
