"""The provider call: litellm (imported lazily), the egress-guarded HTTP client, one retry, an error table.

- litellm takes ~3 s and ~200 MB to import and would fetch a price map from the internet: it is
  imported once, off the event loop, with `LITELLM_LOCAL_MODEL_COST_MAP=True`.
- The key is passed as `api_key=` (never through os.environ) and re-read from Vault once when the
  provider answers 401 (a rotated key).
- Every provider error becomes a BrokerError with our own sentence; litellm's text (which has
  carried keys) only reaches the log, through the redactor.
"""
from __future__ import annotations

import asyncio
import os
import threading

from .egress import _SCOPE, EgressGuard, EgressViolation, egress_scope, host_allowed
from .errors import BrokerError

_litellm = None
_litellm_lock = threading.Lock()


def import_litellm():
    """Import litellm once (about 3 s) with the local cost map, so it never fetches it."""
    global _litellm
    with _litellm_lock:
        if _litellm is None:
            os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
            import litellm

            litellm.telemetry = False
            litellm.suppress_debug_info = True
            litellm.set_verbose = False
            litellm.drop_params = False
            _litellm = litellm
    return _litellm


def loaded_litellm():
    """litellm if it is imported already, else None (never imports)."""
    return _litellm


def caused_by(exc: BaseException, cls) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, cls):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _is_auth(exc, litellm, status) -> bool:
    return isinstance(exc, litellm.AuthenticationError) or status == 401


def _is_redirect(exc, litellm, status) -> bool:
    return isinstance(status, int) and 300 <= status < 400


# (test(exc, litellm, status), error type, message) - first match wins; {timeout} and {status} filled in.
PROVIDER_ERRORS = (
    (_is_auth, "provider_auth", "The provider rejected the key from Vault even after a re-read; "
                                "ask your admin to rotate the key in Vault."),
    (lambda e, ll, s: isinstance(e, ll.RateLimitError) or s == 429, "rate_limited",
     "The provider is rate limiting this key; wait a moment and retry."),
    (lambda e, ll, s: isinstance(e, (ll.Timeout, asyncio.TimeoutError)) or s == 408, "timeout",
     "The provider did not answer within {timeout:g} s; retry later."),
    (lambda e, ll, s: isinstance(e, ll.BadRequestError) or s == 400, "invalid_request",
     "The provider rejected the request as invalid (HTTP 400); check the model parameters."),
    (_is_redirect, "provider_error", "The provider answered a redirect (HTTP {status}); the broker does "
                                     "not follow redirects. Fix the model's api_base."),
)


EGRESS_DENIED = ("The provider connection tried to reach another host than the model's endpoint (a redirect, "
                 "or a host outside c.SecureLLM.allowed_hosts) and was stopped; nothing was sent there.")


# What to do about each TLS failure (kinds from vault/errors.py tls_kind); {alias} and {host} filled in.
TLS_ADVICE = {
    "unknown CA": "the model server's certificate is signed by a CA the broker does not trust; ask your admin to set "
                  "\"ca_bundle\" in c.SecureLLM.models[{alias!r}] to the PEM file of the CA that signed it",
    "host name mismatch": "the model server's certificate does not name {host}; ask your admin to use the host name "
                          "the certificate was issued for in api_base, or to reissue it for {host}",
    "expired certificate": "the model server's certificate is outside its validity period; it must be renewed (or "
                           "this machine's clock is wrong)",
    "client certificate rejected": "the model server demands a client certificate, which the broker does not send",
    "handshake closed by the server": "the model server hung up during the TLS handshake; check that api_base "
                                      "points at its HTTPS port",
}


def tls_error(exc: BaseException, model) -> BrokerError | None:
    """A BrokerError naming the model and the TLS check that failed, or None if `exc` is not a TLS failure."""
    from ..vault.errors import tls_kind

    kind = tls_kind(exc)
    if kind is None:
        return None
    host, port = model.endpoint
    label = f"{host}:{port}" if port else host
    advice = TLS_ADVICE.get(kind, "check the model's api_base and ca_bundle").format(alias=model.alias, host=host)
    return BrokerError("provider_error", f"TLS to model {model.alias!r} at {label} failed ({kind}): {advice}. "
                                         "Nothing was sent to it.")


def provider_error(exc: BaseException, litellm, timeout: float, guard: EgressGuard | None = None,
                   model=None) -> BrokerError:
    if caused_by(exc, EgressViolation) or (guard is not None and guard.violations):
        return BrokerError("egress_denied", EGRESS_DENIED)
    tls = tls_error(exc, model) if model is not None else None
    if tls is not None:
        return tls
    status = getattr(exc, "status_code", None)
    if litellm is not None:
        for test, type_, message in PROVIDER_ERRORS:
            if test(exc, litellm, status):
                return BrokerError(type_, message.format(timeout=timeout, status=status))
    label = f"HTTP {status}" if status else type(exc).__name__
    return BrokerError("provider_error", f"The provider call failed ({label}); retry later or ask your admin.")


async def within(awaitable, timeout: float):
    """Await with a timeout (TimeoutError), without the extra Task wait_for creates (Python 3.11+).

    Used once per stream chunk, so the Task, its scheduling and its wake-up are not free.
    """
    if _timeout_cm is None:
        return await asyncio.wait_for(awaitable, timeout)
    async with _timeout_cm(timeout):
        return await awaitable


_timeout_cm = getattr(asyncio, "timeout", None)


class ProviderClient:
    """Calls litellm with a key from `keys`, through the egress-guarded HTTP client."""

    def __init__(self, keys, allowed_hosts, *, request_timeout: float, redactor, log=None,
                 on_litellm_loaded=None, models=()):
        self.keys = keys
        self.allowed_hosts = list(allowed_hosts)
        # per-model TLS (a private CA, or verification off), by origin, in the pooled client (OpenAI-compatible
        # models; request.py refuses it for providers whose HTTP client litellm builds itself)
        self.tls_by_origin = {m.origin: m.tls_verify for m in models if m.tls_verify is not True}
        self.request_timeout = request_timeout
        self.redactor = redactor
        self.log = log
        self._on_loaded = on_litellm_loaded
        self._import_task: asyncio.Future | None = None
        self._session = None
        self._session_loop = None
        self._refuses_usage: set[str] = set()  # models whose server answered 400 to stream_options

    async def litellm(self):
        if _litellm is not None and self._on_loaded is None:
            return _litellm
        if _litellm is None:
            if self._import_task is None:
                self._import_task = asyncio.ensure_future(self.keys.run(import_litellm))
            await asyncio.shield(self._import_task)
        if self._on_loaded is not None:
            self._on_loaded, hook = None, self._on_loaded
            hook(_litellm)
        return _litellm

    def _egress_session(self, litellm) -> None:
        """The pooled client of litellm's OpenAI-compatible calls (`litellm.aclient_session`).

        No redirects, a host check per request (as egress_scope does for every client), and the
        quick-ACK transport (server/transport.py: the broker must not depend on the provider's
        socket options). One client per event loop, since httpx connection pools are loop-bound.
        """
        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop:
            allowed = self.allowed_hosts

            async def guard(request):
                if not host_allowed(request.url.host, request.url.port, allowed):
                    raise EgressViolation(f"SecureLLM egress guard: {request.url.host} is not in allowed_hosts")

            from .transport import pooled_client

            try:  # litellm's own SSL settings (CA bundle, ssl_verify), as its default client uses
                from litellm.llms.custom_httpx.http_handler import get_ssl_configuration

                verify = get_ssl_configuration()
            except Exception as exc:  # noqa: BLE001 - older/newer litellm: httpx's default verification
                if self.log:
                    self.log.debug("SecureLLM: litellm SSL settings unavailable (%s)", type(exc).__name__)
                verify = True
            self._session = pooled_client(timeout=self.request_timeout, verify=verify, per_origin=self.tls_by_origin,
                                          event_hooks={"request": [guard]})
            self._session_loop = loop
        litellm.aclient_session = self._session

    async def call(self, model, api_base: str, host: str, messages: list, params: dict, stream: bool, user: str):
        """One litellm completion; on 401 the key is re-read from Vault and the call tried once more.

        A stream asks for the provider's usage (`stream_options.include_usage`) unless the model sets
        `stream_usage` False or the caller set `stream_options` itself: litellm forwards it to servers
        that take it and builds the usage chunk itself from the others' native events. A server that
        answers that request with 400 gets it once more without the option, and the model is then
        remembered as one that refuses it (a warning names the model and the setting).
        """
        litellm = await self.litellm()
        self._egress_session(litellm)
        kwargs = dict(params, model=model.model, messages=messages, stream=stream,
                      timeout=self.request_timeout, max_retries=0, num_retries=0)
        usage_requested = (stream and model.stream_usage and "stream_options" not in params
                           and model.model not in self._refuses_usage)
        if usage_requested:
            kwargs["stream_options"] = {"include_usage": True}
        if api_base:
            kwargs["api_base"] = api_base
        what = f"the key of model {model.alias!r}"
        guard = EgressGuard(api_base, host, self.allowed_hosts)
        reread = fell_back = False
        while True:
            key = await self.keys.read(model.secret_path, model.secret_key, user, what=what, fresh=reread)
            try:
                with egress_scope(guard):  # every client, every request
                    resp = await within(litellm.acompletion(api_key=key, **kwargs), self.request_timeout)
                if fell_back:
                    self._refuses_usage.add(model.model)
                    if self.log:
                        self.log.warning("SecureLLM: model %r refused stream_options (HTTP 400) and answered without "
                                         "it; its streams are settled from what was streamed. Set \"stream_usage\": "
                                         "False in c.SecureLLM.models[%r] to skip the first try.", model.alias,
                                         model.alias)
                # some clients (gemini's) send the request only when the stream is first read
                return _ScopedStream(resp, guard, model, usage_requested) if stream else resp
            except Exception as exc:  # noqa: BLE001 - mapped to a contract error below
                status = getattr(exc, "status_code", None)
                if not reread and _is_auth(exc, litellm, status):
                    reread = True
                    if self.log:
                        self.log.warning("SecureLLM: provider answered 401 for model %r; re-reading the key "
                                         "from Vault and retrying once", model.alias)
                    continue
                if usage_requested and (isinstance(exc, litellm.BadRequestError) or status == 400) \
                        and not (guard.violations or caused_by(exc, EgressViolation)):
                    usage_requested, fell_back = False, True  # perhaps the server does not know stream_options
                    del kwargs["stream_options"]
                    continue
                error = provider_error(exc, litellm, self.request_timeout, guard, model)
                if self.log:
                    self.log.warning("SecureLLM: provider call for model %r failed: %s (%s)", model.alias,
                                     self.redactor.redact(f"{type(exc).__name__}: {exc}"), error)
                raise error from None

    async def aclose(self) -> None:
        """Close the pooled client and stop litellm's loop-bound logging worker."""
        if self._session is not None:
            if _litellm is not None and getattr(_litellm, "aclient_session", None) is self._session:
                _litellm.aclient_session = None
            try:
                await self._session.aclose()
            except Exception as exc:  # noqa: BLE001 - best effort at shutdown
                if self.log:
                    self.log.debug("SecureLLM: closing the provider client: %s", type(exc).__name__)
            self._session = None
        if _litellm is not None:
            try:
                from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

                await GLOBAL_LOGGING_WORKER.stop(discard_pending=True, timeout=2)
            except Exception as exc:  # noqa: BLE001 - best effort at shutdown
                if self.log:
                    self.log.debug("SecureLLM: litellm logging worker stop: %s", type(exc).__name__)


class _ScopedStream:
    """A provider stream whose every read runs inside the call's egress scope."""

    __slots__ = ("_resp", "_it", "guard", "model_config", "usage_requested")

    def __init__(self, resp, guard: EgressGuard, model=None, usage_requested: bool = False):
        self._resp = resp
        self._it = None
        self.guard = guard
        self.model_config = model  # names the model in a TLS error raised on the first read
        self.usage_requested = usage_requested  # the broker, not the caller, asked for the usage chunk

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._it is None:
            self._it = self._resp.__aiter__()
        # egress_scope without its generator per chunk (the hooks were installed by the call itself)
        token = _SCOPE.set(self.guard)
        try:
            return await self._it.__anext__()
        finally:
            _SCOPE.reset(token)

    async def aclose(self):
        close = getattr(self._resp, "aclose", None)
        if close is not None:
            await close()
