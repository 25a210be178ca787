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


# -- on the wire: one guard under every HTTP client litellm may use -------------------------------
#
# litellm talks to providers through several clients: the OpenAI SDK (httpx), its own AsyncHTTPHandler
# (httpx, which follows redirects by default and also follows them by hand), and aiohttp (the
# aiohttp_openai provider, and the transport under httpx). Guarding one client leaves the others
# open: an Anthropic endpoint answering 307 to another host got the key sent there. So the guard
# sits at the two libraries' request entry points (httpx `_send_single_request`, every hop; aiohttp
# `_request`), where every request of every client passes, and applies only inside a provider call (`egress_scope`, a
# context variable: other code in the server is untouched). Inside the scope every request, every
# redirect hop included, must go to the call's own endpoint (scheme, host, port), so a redirect to
# another host is refused before it is sent and the other host receives nothing.

import contextlib
import contextvars

_SCOPE: contextvars.ContextVar = contextvars.ContextVar("securellm_egress_scope", default=None)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class EgressViolation(Exception):
    """A request inside a provider call to anywhere but the call's endpoint; mapped to `egress_denied`."""


class EgressGuard:
    """One provider call's endpoint; `violations` counts refused requests (clients may re-wrap the error)."""

    __slots__ = ("expected", "allowed", "violations")

    def __init__(self, api_base: str, host: str, allowed):
        if api_base:
            parts = urlsplit(api_base)
            scheme, port = parts.scheme, parts.port
        else:
            scheme, port = "https", None
        self.expected = (scheme, host.lower(), port or _DEFAULT_PORTS.get(scheme))
        self.allowed = list(allowed)
        self.violations = 0


@contextlib.contextmanager
def egress_scope(guard: EgressGuard):
    """Every HTTP request made inside this block must go to the guard's endpoint."""
    install_egress_hooks()
    token = _SCOPE.set(guard)
    try:
        yield guard
    finally:
        _SCOPE.reset(token)


def check_request(scheme: str, host: str | None, port: int | None) -> None:
    """Raise EgressViolation if a provider call is in scope and this request leaves its endpoint."""
    guard = _SCOPE.get()
    if guard is None:
        return
    e_scheme, e_host, e_port = guard.expected
    host = (host or "").lower().strip("[]")
    port = port or _DEFAULT_PORTS.get(scheme)
    if (scheme, host, port) != guard.expected or not host_allowed(host, port, guard.allowed):
        guard.violations += 1
        raise EgressViolation(f"SecureLLM egress guard: a request to {host}:{port} left the provider endpoint "
                              f"{e_host}:{e_port} (a redirect, or a host outside allowed_hosts)")


def in_scope() -> bool:
    return _SCOPE.get() is not None


_INSTALLED = False


def install_egress_hooks() -> None:
    """Wrap httpx's and aiohttp's request entry points once per process (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    _wrap_httpx()
    _wrap_aiohttp()


def _wrap_httpx() -> None:
    """Every hop of every httpx request, redirects followed by httpx included, passes `_send_single_request`;
    requests a client re-sends by hand (litellm follows redirects itself too) pass it as well."""
    import httpx

    for cls in (httpx.AsyncClient, httpx.Client):
        orig = cls._send_single_request
        if getattr(orig, "_securellm_egress", False):
            continue
        if cls is httpx.AsyncClient:
            async def hop(self, request, *args, _orig=orig, **kwargs):
                if _SCOPE.get() is not None:
                    check_request(request.url.scheme, request.url.host, request.url.port)
                return await _orig(self, request, *args, **kwargs)
        else:
            def hop(self, request, *args, _orig=orig, **kwargs):
                if _SCOPE.get() is not None:
                    check_request(request.url.scheme, request.url.host, request.url.port)
                return _orig(self, request, *args, **kwargs)
        hop._securellm_egress = True
        cls._send_single_request = hop


def _wrap_aiohttp() -> None:
    try:
        import aiohttp
        from yarl import URL
    except ImportError:  # litellm without aiohttp: httpx is the only stack
        return
    orig = aiohttp.ClientSession._request
    if getattr(orig, "_securellm_egress", False):
        return

    async def _request(self, method, str_or_url, *args, **kwargs):
        if _SCOPE.get() is not None:
            url = URL(str(str_or_url)) if not isinstance(str_or_url, URL) else str_or_url
            check_request(url.scheme, url.host, url.port)
            kwargs["allow_redirects"] = False
        return await orig(self, method, str_or_url, *args, **kwargs)

    _request._securellm_egress = True
    aiohttp.ClientSession._request = _request
