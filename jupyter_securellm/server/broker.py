"""The broker: every LLM call from a kernel or the browser goes through `Broker.chat`.

Order matters and is the security argument (DESIGN.md, tier 2):
policy hook -> DLP on the prompt -> egress allowlist -> key from Vault -> litellm
-> redaction of the answer. Nothing leaves the server before policy, DLP and egress
have passed; the key is read from Vault off the event loop, handed to litellm as an
argument (never through os.environ) and never written into a response or log.
"""
from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, AsyncIterator

from .egress import endpoint_for, host_allowed
from .errors import BrokerError

ROLES = {"system", "user", "assistant", "tool", "developer", "function"}

# OpenAI chat parameters a caller may set, with a type check each. Anything else is refused:
# litellm accepts api_base, base_url, api_key, extra_headers, callbacks, mock_response...
# and any of those would let a caller redirect or observe the key.
_NUM = (int, float)
PARAMS: dict[str, tuple] = {
    "temperature": _NUM, "top_p": _NUM, "presence_penalty": _NUM, "frequency_penalty": _NUM,
    "max_tokens": (int,), "max_completion_tokens": (int,), "n": (int,), "seed": (int,),
    "stop": (str, list), "response_format": (dict,), "tools": (list,), "tool_choice": (str, dict),
    "user": (str,), "stream_options": (dict,), "logit_bias": (dict,), "logprobs": (bool,),
    "top_logprobs": (int,), "parallel_tool_calls": (bool,),
}
RESERVED = {"model", "messages", "stream", "api_base"}
_STRUCTURAL = {"role", "type", "tool_call_id", "id", "finish_reason"}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: a kernel (by capability token) or a browser user (Jupyter auth).

    On a JupyterHub, `user` and `groups` are the Hub's (jupyter_securellm.hub.identity): the one
    place policy (`input.groups`) and budget groups read them from. Never from the request body.
    """

    user: str
    kernel_id: str | None = None
    groups: tuple[str, ...] = ()

    @property
    def via(self) -> str:
        return "kernel" if self.kernel_id else "browser"


class EgressViolation(Exception):
    """Raised by the transport guard; mapped to `egress_denied`."""

    def __init__(self, message, request=None):
        super().__init__(message)
        self.request = request


def _caused_by(exc: BaseException, cls) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, cls):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class AllowAllPolicy:
    """Policy hook point. Policy as code (Rego) arrives in a later issue; this one allows."""

    def __init__(self, **_):
        pass

    async def check(self, caller: Caller, action: str, request: dict) -> None:
        return None


# -- litellm, imported lazily off the event loop -------------------------------------------

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


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


class Broker:
    """Service object kept in the server settings; handlers call its coroutines."""

    def __init__(self, *, models: dict, allowed_hosts: list, vault, redactor, prompt_dlp_mode: str = "block",
                 user_secret_paths=(), request_timeout: float = 120.0, policy=None, log=None,
                 max_workers: int = 8, on_litellm_loaded=None):
        self.models = models
        self.allowed_hosts = list(allowed_hosts)
        self.vault = vault
        self.redactor = redactor
        self.prompt_dlp_mode = prompt_dlp_mode
        self.user_secret_paths = list(user_secret_paths)
        self.request_timeout = request_timeout
        self.policy = policy or AllowAllPolicy()
        self.log = log
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="securellm")
        self._known: set[str] = set()
        self._provider_key_digests: set[str] = set()
        self._litellm_loaded = on_litellm_loaded
        self._import_task: asyncio.Future | None = None
        self._session = None
        self._session_loop = None

    # -- helpers ------------------------------------------------------------------------------
    async def _run(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    async def litellm(self):
        if _litellm is not None:
            return _litellm
        if self._import_task is None:
            self._import_task = asyncio.ensure_future(self._run(import_litellm))
        mod = await asyncio.shield(self._import_task)
        if self._litellm_loaded is not None:
            self._litellm_loaded(mod)
            self._litellm_loaded = None
        return mod

    def remember_secret(self, value: str, provider_key: bool = False) -> None:
        """Register a secret with the redactor once (also the DLP scanner: same Scanner)."""
        if not value:
            return
        digest = _sha(value)
        if provider_key:
            self._provider_key_digests.add(digest)
        if digest not in self._known:
            self.redactor.add_secret(value)
            self._known.add(digest)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """Stop litellm's loop-bound logging worker, so no coroutine outlives the server's loop."""
        if self._session is not None:
            if _litellm is not None and getattr(_litellm, "aclient_session", None) is self._session:
                _litellm.aclient_session = None
            try:
                await self._session.aclose()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass
            self._session = None
        if _litellm is not None:
            try:
                from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

                await GLOBAL_LOGGING_WORKER.stop(discard_pending=True, timeout=2)
            except Exception as exc:  # noqa: BLE001 - best effort at shutdown
                if self.log:
                    self.log.debug("SecureLLM: litellm logging worker stop: %s", type(exc).__name__)
        self.close()

    # -- validation ---------------------------------------------------------------------------
    def validate(self, body: Any) -> tuple[dict, dict]:
        """Check a chat/completions body; return (model config, litellm params)."""
        if not isinstance(body, dict):
            raise BrokerError("invalid_request", "The request body must be a JSON object.")
        alias = body.get("model")
        if not isinstance(alias, str) or not alias:
            raise BrokerError("invalid_request", "Field 'model' is required and must be a model alias string.")
        if alias not in self.models:
            known = ", ".join(sorted(self.models)) or "none configured"
            raise BrokerError("not_found", f"Unknown model alias {alias!r}; available: {known}.")
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs or len(msgs) > 2000:
            raise BrokerError("invalid_request", "Field 'messages' must be a non-empty list (at most 2000 messages).")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                raise BrokerError("invalid_request",
                                  f"messages[{i}] must be an object with a role among {sorted(ROLES)}.")
            c = m.get("content")
            if c is not None and not isinstance(c, (str, list)):
                raise BrokerError("invalid_request", f"messages[{i}].content must be a string, a list of parts or null.")
        if "stream" in body and not isinstance(body["stream"], bool):
            raise BrokerError("invalid_request", "Field 'stream' must be true or false.")
        if "api_base" in body and not isinstance(body["api_base"], (str, type(None))):
            raise BrokerError("invalid_request", "Field 'api_base' must be a string.")
        params = {}
        for k, v in body.items():
            if k in RESERVED:
                continue
            if k not in PARAMS:
                raise BrokerError("invalid_request",
                                  f"Parameter {k!r} is not accepted by the broker; allowed: {', '.join(sorted(PARAMS))}.")
            types = PARAMS[k]
            if isinstance(v, bool) and bool not in types or not isinstance(v, types):
                raise BrokerError("invalid_request", f"Parameter {k!r} has the wrong type ({type(v).__name__}).")
            params[k] = v
        cfg = dict(self.models[alias], alias=alias, _allowed_hosts=self.allowed_hosts)
        return cfg, params

    # -- DLP ----------------------------------------------------------------------------------
    def _texts(self, messages, params):
        """Yield (where, setter, text) for every string a request carries to the provider.

        All strings of every message (content, parts, names, tool-call arguments...) and of the
        parameters (tool definitions, response_format, stop...), except structural fields and
        inline data URLs (base64 images are not text a user typed).
        """
        def walk(obj, where):
            if isinstance(obj, dict):
                for k, v in obj.items():
                    if isinstance(v, str):
                        if k in _STRUCTURAL or (k == "url" and v.startswith("data:")):
                            continue
                        yield where, (lambda new, o=obj, k=k: o.__setitem__(k, new)), v
                    else:
                        yield from walk(v, where)
            elif isinstance(obj, list):
                for j, v in enumerate(obj):
                    if isinstance(v, str):
                        yield where, (lambda new, o=obj, j=j: o.__setitem__(j, new)), v
                    else:
                        yield from walk(v, where)

        for i, m in enumerate(messages):
            yield from walk(m, f"message {i}")
        for k, v in params.items():
            if isinstance(v, str):
                yield f"parameter {k!r}", (lambda new, k=k: params.__setitem__(k, new)), v
            else:
                yield from walk(v, f"parameter {k!r}")

    def prompt_dlp(self, messages: list, params: dict | None = None) -> tuple[list, dict, list]:
        """Block (default) or redact secrets in the request; returns (messages, params, findings)."""
        import copy

        messages, params = copy.deepcopy(messages), copy.deepcopy(params or {})
        found = []
        scanner = self.redactor.scanner
        for where, setter, text in self._texts(messages, params):
            fs = scanner.scan(text)
            if not fs:
                continue
            found.extend({"where": where, "rule_id": f.rule_id, "fingerprint": f.fingerprint} for f in fs)
            if self.prompt_dlp_mode == "redact":
                setter(self.redactor.redact(text))
        if found and self.prompt_dlp_mode != "redact":
            rules = ", ".join(sorted({f["rule_id"] for f in found}))
            raise BrokerError(
                "dlp_blocked",
                f"The prompt was not sent: it contains what looks like a secret ({rules}) in {found[0]['where']}; "
                "remove it and use secrets.get() to keep credentials out of prompts.",
                findings=found,
            )
        return messages, params, found

    # -- Vault ----------------------------------------------------------------------------------
    async def read_key(self, cfg: dict, user: str, *, fresh: bool = False, provider_key: bool = True) -> str:
        """Read a secret off the event loop; Vault errors become contract errors naming Vault."""
        from . import vault as vault_mod

        path, key = cfg["secret_path"], cfg["secret_key"]
        what = f"the key of model {cfg['alias']!r}" if provider_key else f"secret {path!r}"
        try:
            if fresh:
                await self._run(self.vault.invalidate, path)
            value = await self._run(self.vault.read_secret, path, key, user=user)
        except vault_mod.VaultError as exc:
            if self.log:  # the client's messages carry no secrets; the log filter redacts anyway
                self.log.warning("SecureLLM: Vault error reading %s: %s: %s", what, type(exc).__name__, exc)
            raise self._map_vault_error(exc, vault_mod, path, key, what) from None
        self.remember_secret(value, provider_key=provider_key)
        return value

    @staticmethod
    def _map_vault_error(exc, vault_mod, path: str, key: str, what: str) -> BrokerError:
        if isinstance(exc, vault_mod.SecretNotFound):
            return BrokerError("not_found", f"Vault has no field {key!r} at {path!r} ({what}); "
                                            "ask your admin to store it or fix the configuration.")
        if isinstance(exc, vault_mod.VaultSealed):
            return BrokerError("vault_unavailable", "Vault is sealed and no cached value is valid; "
                                                    "ask your admin to unseal Vault, then retry.")
        if isinstance(exc, vault_mod.VaultUnavailable):
            return BrokerError("vault_unavailable", "Vault is unreachable and no cached value is valid; "
                                                    "check c.SecureLLM.vault_url and that Vault is up, then retry.")
        if isinstance(exc, vault_mod.VaultAuthError):
            return BrokerError("vault_unavailable", "The server could not log in to Vault; "
                                                    "check the c.SecureLLM.vault_* auth settings.")
        if isinstance(exc, vault_mod.VaultPermissionDenied):
            return BrokerError("vault_unavailable", f"Vault denied reading {path!r}; "
                                                    "ask your admin to grant the server's Vault role read access.")
        if isinstance(exc, vault_mod.VaultConfigError):
            return BrokerError("invalid_request", f"The Vault path {path!r} or field {key!r} is not usable; "
                                                  "check the path and field name.")
        return BrokerError("vault_unavailable", f"Vault returned an error while reading {what}; "
                                                "see the server log and retry.")

    # -- litellm --------------------------------------------------------------------------------
    def _map_provider_error(self, exc, litellm) -> BrokerError:
        status = getattr(exc, "status_code", None)
        if isinstance(exc, litellm.AuthenticationError) or status == 401:
            return BrokerError("provider_auth", "The provider rejected the key from Vault even after a re-read; "
                                                "ask your admin to rotate the key in Vault.")
        if isinstance(exc, litellm.RateLimitError) or status == 429:
            return BrokerError("rate_limited", "The provider is rate limiting this key; wait a moment and retry.")
        if isinstance(exc, (litellm.Timeout, asyncio.TimeoutError)) or status == 408:
            return BrokerError("timeout", f"The provider did not answer within {self.request_timeout:g} s; retry later.")
        if isinstance(exc, litellm.BadRequestError) or status == 400:
            return BrokerError("invalid_request", "The provider rejected the request as invalid (HTTP 400); "
                                                  "check the model parameters.")
        if isinstance(status, int) and 300 <= status < 400:
            return BrokerError("provider_error", f"The provider answered a redirect (HTTP {status}); the broker does "
                                                 "not follow redirects. Fix the model's api_base.")
        label = f"HTTP {status}" if status else type(exc).__name__
        return BrokerError("provider_error", f"The provider call failed ({label}); retry later or ask your admin.")

    def _egress_session(self, litellm) -> None:
        """Transport-level egress guard for litellm's OpenAI-compatible clients.

        The pre-call check covers the configured endpoint; this covers what happens on the wire:
        redirects are not followed (the SDK would follow a 307 to any host, prompt included) and
        every request's host is checked against `allowed_hosts` before it is sent. One client
        per event loop, since httpx connection pools are loop-bound.
        """
        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop:
            import httpx

            allowed = self.allowed_hosts

            async def guard(request):
                if not host_allowed(request.url.host, request.url.port, allowed):
                    raise EgressViolation(f"SecureLLM egress guard: {request.url.host} is not in allowed_hosts",
                                          request=request)

            kwargs = {}
            try:  # litellm's own (aiohttp-backed) transport and SSL settings, as its default client uses
                from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler, get_ssl_configuration

                ssl_config = get_ssl_configuration()
                kwargs["verify"] = ssl_config
                kwargs["transport"] = AsyncHTTPHandler.create_async_transport(
                    ssl_context=ssl_config if not isinstance(ssl_config, bool) else None,
                    ssl_verify=ssl_config if isinstance(ssl_config, bool) else None)
            except Exception:  # noqa: BLE001 - older/newer litellm: plain httpx transport
                kwargs = {}
            self._session = httpx.AsyncClient(follow_redirects=False, event_hooks={"request": [guard]},
                                              timeout=httpx.Timeout(self.request_timeout), **kwargs)
            self._session_loop = loop
        litellm.aclient_session = self._session

    async def _call(self, cfg: dict, api_base: str, messages: list, params: dict, stream: bool, caller: Caller):
        litellm = await self.litellm()
        self._egress_session(litellm)
        kwargs = dict(params, model=cfg["model"], messages=messages, stream=stream,
                      timeout=self.request_timeout, max_retries=0, num_retries=0)
        if api_base:
            kwargs["api_base"] = api_base
        for attempt in (0, 1):
            key = await self.read_key(cfg, caller.user, fresh=attempt == 1)
            try:
                return await _within(litellm.acompletion(api_key=key, **kwargs), self.request_timeout)
            except Exception as exc:  # noqa: BLE001 - mapped to a contract error below
                if attempt == 0 and (isinstance(exc, litellm.AuthenticationError)
                                     or getattr(exc, "status_code", None) == 401):
                    if self.log:
                        self.log.warning("SecureLLM: provider answered 401 for model %r; re-reading the key "
                                         "from Vault and retrying once", cfg["alias"])
                    continue
                if self.log:
                    self.log.warning("SecureLLM: provider call for model %r failed: %s", cfg["alias"],
                                     self.redactor.redact(f"{type(exc).__name__}: {exc}"))
                if _caused_by(exc, EgressViolation):
                    raise BrokerError("egress_denied", "The provider connection tried to reach a host outside "
                                                       "c.SecureLLM.allowed_hosts and was stopped.") from None
                raise self._map_provider_error(exc, litellm) from None
        raise AssertionError("unreachable")

    async def _prepare(self, caller: Caller, body: Any):
        cfg, params = self.validate(body)
        await self.policy.check(caller, "chat", {"model": cfg["alias"], "params": params})
        messages, params, _ = self.prompt_dlp(body["messages"], params)
        api_base, _host = endpoint_for(cfg, body.get("api_base"))
        return cfg, params, messages, api_base

    # -- public API -------------------------------------------------------------------------------
    async def chat(self, caller: Caller, body: Any) -> dict:
        cfg, params, messages, api_base = await self._prepare(caller, body)
        resp = await self._call(cfg, api_base, messages, params, False, caller)
        return self.redact_obj(resp.model_dump())

    async def chat_stream(self, caller: Caller, body: Any) -> AsyncIterator[dict]:
        """Prepare (raising BrokerError before anything is sent), then return a chunk iterator."""
        cfg, params, messages, api_base = await self._prepare(caller, body)
        resp = await self._call(cfg, api_base, messages, params, True, caller)
        return self._stream(resp, cfg)

    async def _stream(self, resp, cfg) -> AsyncIterator[dict]:
        litellm = _litellm
        fields = _DeltaStreams(self.redactor)  # one StreamRedactor per streamed text field of each choice
        clean = _CleanStrings()  # this stream's id/model/role strings repeat in every chunk: scan them once
        last = None
        it = resp.__aiter__()
        try:
            while True:
                try:  # an idle stream (slow provider) ends with a timeout error event
                    chunk = await _within(it.__anext__(), self.request_timeout)
                except StopAsyncIteration:
                    break
                d = chunk.model_dump()
                last = d
                for choice in d.get("choices") or []:
                    idx = choice.get("index", 0)
                    delta = choice.get("delta") or {}
                    fields.feed(idx, delta)
                    if choice.get("finish_reason"):
                        fields.flush_into(idx, delta)
                        choice["delta"] = delta
                yield self.redact_obj(d, skip_content=True, clean=clean)
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, BrokerError):
                raise
            if self.log:
                self.log.warning("SecureLLM: stream for model %r broke: %s", cfg["alias"],
                                 self.redactor.redact(f"{type(exc).__name__}: {exc}"))
            raise (self._map_provider_error(exc, litellm) if litellm else
                   BrokerError("provider_error", "The provider stream broke; retry.")) from None
        finally:  # the client went away, or we are done: release the provider connection now
            close = getattr(resp, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # noqa: BLE001 - best effort
                    pass
        # a stream that ended without finish_reason: emit what the redactors still hold
        for idx in fields.choices():
            delta: dict = {}
            fields.flush_into(idx, delta)
            if delta and last is not None:
                yield {"id": last.get("id"), "object": "chat.completion.chunk", "created": last.get("created"),
                       "model": last.get("model"),
                       "choices": [{"index": idx, "delta": delta, "finish_reason": None}]}

    def redact_obj(self, obj, skip_content: bool = False, clean: "_CleanStrings | None" = None):
        """Redact every string in a JSON-like object (delta content is stream-redacted instead).

        Fast path: one scan over all the strings joined; only when it finds something is each
        string redacted on its own (the join can only add matches, never hide one). A stream passes
        `clean`, the strings already found clean in its earlier chunks with the same set of known
        secrets: only the new ones are scanned. The result is the same as redacting each string.
        """
        strings = []
        _collect(obj, strings, skip_content)
        if not strings:
            return obj
        scanner = self.redactor.scanner
        if clean is not None:
            strings = clean.unseen(strings, getattr(scanner, "known_version", None))
            if not strings:
                return obj
        if not scanner.scan("\n".join(strings)):
            if clean is not None:
                clean.add(strings)
            return obj
        return self._redact_each(obj, skip_content)

    def _redact_each(self, obj, skip_content: bool = False, _key=None):
        if isinstance(obj, str):
            if skip_content and _key in STREAMED_KEYS:
                return obj
            return self.redactor.redact(obj)
        if isinstance(obj, dict):
            return {k: self._redact_each(v, skip_content, k) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._redact_each(v, skip_content, _key) for v in obj]
        return obj

    # -- other endpoints ---------------------------------------------------------------------------
    def list_models(self) -> dict:
        return {"object": "list",
                "data": [{"id": a, "object": "model", "owned_by": "jupyter-securellm"} for a in sorted(self.models)]}

    def _is_provider_path(self, path: str, user: str) -> bool:
        """Any path a model's key may be read from: its template, any user's path, the shared fallback."""
        norm = path.strip("/")
        for cfg in self.models.values():
            tpl = cfg["secret_path"].strip("/")
            cands = {tpl, tpl.replace("{user}", user), "/".join(s for s in tpl.split("/") if s != "{user}")}
            try:
                from .vault import candidate_paths

                cands.update(candidate_paths(tpl, user))
            except Exception:  # noqa: BLE001 - the sets above already cover the usual shapes
                pass
            for cand in cands:
                if cand and (norm == cand or fnmatch.fnmatchcase(norm, cand.replace("{user}", "*"))):
                    return True
        return False

    async def get_user_secret(self, caller: Caller, body: Any) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("path"), str) or not isinstance(body.get("key"), str):
            raise BrokerError("invalid_request", "Send {\"path\": str, \"key\": str}.")
        path, key = body["path"].strip().strip("/"), body["key"]
        segs = path.split("/")
        if not path or any(s in ("", ".", "..") for s in segs) or len(path) > 512 or not key or len(key) > 256:
            raise BrokerError("invalid_request", "Field 'path' must be a KV path like 'db/analytics' (no empty, "
                                                 "'.' or '..' segments) and 'key' a field name.")
        deny = BrokerError("policy_denied", f"Secret path {path!r} is not readable from notebooks; ask your admin to "
                                            "add it to c.SecureLLM.user_secret_paths (provider keys never are).")
        if self._is_provider_path(path, caller.user):
            raise deny
        globs = [g.replace("{user}", caller.user).strip("/") for g in self.user_secret_paths]
        if not any(fnmatch.fnmatchcase(path.strip("/"), g) for g in globs):
            raise deny
        await self.policy.check(caller, "secret", {"path": path, "key": key})
        cfg = {"secret_path": path, "secret_key": key, "alias": f"secret {path}"}
        value = await self.read_key(cfg, caller.user, provider_key=False)
        digest = _sha(value)
        if digest in self._provider_key_digests:
            raise deny
        for mcfg in self.models.values():  # same value stored under another path than a model's: still refuse
            try:
                pk = await self._run(self.vault.read_secret, mcfg["secret_path"], mcfg["secret_key"], user=caller.user)
            except Exception:  # noqa: BLE001 - an unreadable provider key cannot equal this value
                continue
            if _sha(pk) == digest:
                raise deny
        return {"value": value}

    async def status(self, caller: Caller, version: str) -> dict:
        try:
            vs = await asyncio.wait_for(self._run(self.vault.status), 10)
        except Exception:  # noqa: BLE001
            vs = {}
        vault = {
            "url": str(vs.get("url", "")),
            "reachable": bool(vs.get("reachable", False)),
            "sealed": vs.get("sealed") if isinstance(vs.get("sealed"), bool) else None,
            "auth_method": str(vs.get("auth_method", "")),
        }
        return {"broker": "ok", "version": version, "user": caller.user, "vault": vault,
                "models": sorted(self.models), "budget": None, "alerts": []}


class _CleanStrings:
    """Strings of one stream already scanned and found clean, valid for one `known_version`.

    Only for scanners that expose `known_version` (the set of known secrets can grow while a stream
    runs: then everything is scanned again). Bounded, so a long stream of distinct strings
    (tool-call arguments) does not grow it without limit.
    """

    __slots__ = ("_seen", "_version")
    LIMIT = 512

    def __init__(self):
        self._seen: set[str] = set()
        self._version = None

    def unseen(self, strings: list, version) -> list:
        if version is None:
            return strings
        if version != self._version:
            self._seen.clear()
            self._version = version
        seen = self._seen
        return [s for s in strings if s not in seen]

    def add(self, strings: list) -> None:
        # the version was read (in unseen) before the scan: a secret added meanwhile bumps it and
        # empties the set at the next chunk, so a string is never trusted across a version change
        if self._version is not None and len(self._seen) < self.LIMIT:
            self._seen.update(strings)


async def _within(awaitable, timeout: float):
    """Await with a timeout (TimeoutError), without the extra Task wait_for creates (Python 3.11+).

    Used once per chunk, so the Task, its scheduling and its wake-up are not free.
    """
    if _timeout_cm is None:
        return await asyncio.wait_for(awaitable, timeout)
    async with _timeout_cm(timeout):
        return await awaitable


_timeout_cm = getattr(asyncio, "timeout", None)


#: Text fields of a streamed delta that arrive in pieces: each gets its own StreamRedactor, so a secret
#: split over chunks is caught (tool-call arguments and reasoning included, not just the content).
STREAMED_KEYS = frozenset({"content", "reasoning_content", "refusal", "arguments", "thinking", "text"})


class _DeltaStreams:
    """StreamRedactors keyed by (choice index, field path); tool calls are told apart by their `index`."""

    def __init__(self, redactor):
        self._redactor = redactor
        self._streams: dict[tuple, Any] = {}

    def choices(self) -> list[int]:
        return sorted({k[0] for k in self._streams})

    def feed(self, idx: int, delta: dict) -> None:
        self._walk(idx, delta, ())

    def _walk(self, idx, obj, path):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, str) and k in STREAMED_KEYS:
                    key = (idx, path + (k,))
                    sr = self._streams.get(key)
                    if sr is None:
                        sr = self._streams[key] = self._redactor.stream()
                    obj[k] = sr.feed(v)
                elif isinstance(v, (dict, list)):
                    self._walk(idx, v, path + (k,))
        elif isinstance(obj, list):
            for pos, v in enumerate(obj):
                tag = v.get("index", pos) if isinstance(v, dict) else pos
                self._walk(idx, v, path + (("#", tag),))

    def flush_into(self, idx: int, delta: dict) -> None:
        """Append what the choice's redactors hold back to `delta` (at each field's path) and reset them."""
        for key in [k for k in self._streams if k[0] == idx]:
            rest = self._streams.pop(key).flush()
            if rest:
                _append_at(delta, key[1], rest)


def _append_at(obj: dict, path: tuple, text: str) -> None:
    """Append `text` to the string at `path` in a delta, creating dicts and indexed list items as needed."""
    *parents, leaf = path
    cur: Any = obj
    for pos, step in enumerate(parents):
        if isinstance(step, tuple):  # ("#", index) inside a list of indexed items
            item = next((x for x in cur if isinstance(x, dict) and x.get("index") == step[1]), None)
            if item is None:
                item = {"index": step[1]}
                cur.append(item)
            cur = item
        else:
            nxt = cur.get(step)
            if nxt is None:
                nxt = [] if isinstance(path[pos + 1], tuple) else {}
                cur[step] = nxt
            cur = nxt
    cur[leaf] = (cur.get(leaf) or "") + text


def _collect(obj, out: list, skip_content: bool, key=None) -> None:
    if isinstance(obj, str):
        if not (skip_content and key in STREAMED_KEYS):
            out.append(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _collect(v, out, skip_content, k)
    elif isinstance(obj, list):
        for v in obj:
            _collect(v, out, skip_content, key)
