"""The broker: every LLM call from a kernel, the browser or the Hub service goes through here.

The order of the checks is the security argument (docs/architecture.md, tier 2). For a chat:

    1. validate    ChatRequest.from_body: a known alias, allowed parameters only (400/404)
    2. authorize   each governor (policy): may this caller make this call? (403)
    3. DLP         no secret inside the prompt (422, or redacted in 'redact' mode)
    4. egress      the endpoint is the model's own and on c.SecureLLM.allowed_hosts (403)
    5. reserve     each governor (budget): is there room for this call? (429)
    6. key + call  key from Vault (cache hit on the loop, else a worker thread), litellm with
                   `api_key=`, through the egress-guarded client (no redirects, allowlist per request)
    7. redact      the answer, or each stream chunk, before it leaves the server
    8. settle, record   each governor, in reverse order, always (also on errors and hang-ups)

A stream is complete for the caller at its finish_reason (unless it asked for a usage chunk): the
governors settle and record then, the caller gets its end of stream, and what the provider still
sends (its own end marker, litellm's end-of-stream bookkeeping) is read off the caller's path.

Nothing leaves the server before steps 1-5 have passed. The key is never written into a response
or a log. The steps live in their own modules (request, governor, dlp, egress, keys, provider,
streaming, user_secrets); this file only orders them.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, AsyncIterator, Mapping, Sequence

from .dlp import PromptDLP
from .egress import endpoint_for
from .errors import BrokerError
from .governor import Call, Caller, Governor, Outcome, usage_of
from .keys import KeySource
from .provider import ProviderClient, within
from .request import ChatRequest, ModelConfig
from .streaming import AnswerRedactor
from .user_secrets import UserSecrets, parse as parse_secret_request

__all__ = ["Broker", "Caller"]


#: Seconds the provider gets, after every choice finished, to end its stream (and send its usage chunk).
DRAIN_TIMEOUT = 30.0


def _streamed_usage(chars: int) -> dict:
    """What settles a stream without the provider's usage: the characters streamed (governance estimates)."""
    return {"usage": {"streamed_chars": chars}}


def _choices_to_finish(params: Mapping[str, Any]) -> set[int] | None:
    """The choice indexes whose finish_reason completes a stream; None when the caller asked for
    `stream_options.include_usage` (the usage chunk comes after every finish_reason)."""
    options = params.get("stream_options")
    if isinstance(options, Mapping) and options.get("include_usage"):
        return None
    n = params.get("n")
    return set(range(n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1))


class Broker:
    """Service object kept in the server settings (or the Hub service); handlers call `dispatch`."""

    def __init__(self, *, models: Mapping[str, ModelConfig], allowed_hosts: Sequence[str], vault, redactor,
                 prompt_dlp_mode: str = "block", user_secret_paths=(), request_timeout: float = 120.0,
                 governors: Sequence[Governor] = (), log=None, max_workers: int = 8, on_litellm_loaded=None):
        self.models = dict(models)
        self.allowed_hosts = list(allowed_hosts)
        self.vault = vault
        self.redactor = redactor
        self.log = log
        self.governors = list(governors)
        self.keys = KeySource(vault, redactor, log=log, max_workers=max_workers)
        self.dlp = PromptDLP(redactor, prompt_dlp_mode)
        self.provider = ProviderClient(self.keys, self.allowed_hosts, request_timeout=request_timeout,
                                       redactor=redactor, log=log, on_litellm_loaded=on_litellm_loaded,
                                       models=self.models.values())
        self.answers = AnswerRedactor(redactor, log)
        self.user_secrets = UserSecrets(self.keys, self.models, user_secret_paths)
        # provider streams read to their end after the answer -> the user whose call they still record (or None)
        self._drains: dict[asyncio.Task, str | None] = {}

    # -- the one entry point for REST handlers and the Hub service --------------------------------
    async def dispatch(self, caller: Caller, action: str, body: Any = None):
        """`chat` (a dict, or an async iterator of chunks when body["stream"]), `secret`, `models`, `status`."""
        if action == "chat":
            stream = isinstance(body, dict) and body.get("stream") is True
            return await (self.chat_stream(caller, body) if stream else self.chat(caller, body))
        if action == "secret":
            return await self.get_user_secret(caller, body)
        if action == "models":
            await self._authorize_only(caller, "models")
            return self.list_models()
        if action == "status":
            await self._authorize_only(caller, "status")
            return await self.status(caller, (body or {}).get("version", ""))
        raise BrokerError("not_found", f"Unknown broker action {action!r}.")

    # -- chat ---------------------------------------------------------------------------------------
    async def chat(self, caller: Caller, body: Any) -> dict:
        call = self._call_for(caller, body)
        reservations, answer, error = [], None, None
        try:
            call, messages, params, (api_base, host) = await self._admit(call, reservations)
            resp = await self.provider.call(call.request.model, api_base, host, messages, params, False, caller.user)
            answer = self.answers.redact_obj(resp.model_dump())
            return answer
        except BrokerError as exc:
            error = exc
            raise
        finally:
            await self._finish(call, reservations, answer, error)

    async def chat_stream(self, caller: Caller, body: Any) -> AsyncIterator[dict]:
        """Admit and start the call (raising BrokerError before anything is sent), then return the chunks."""
        call = self._call_for(caller, body)
        reservations: list = []
        try:
            call, messages, params, (api_base, host) = await self._admit(call, reservations)
            resp = await self.provider.call(call.request.model, api_base, host, messages, params, True, caller.user)
        except BaseException as exc:
            await self._finish(call, reservations, None, exc)
            raise
        chunks = self.answers.stream(resp, call.model, self.provider.request_timeout)
        return self._chunks(call, reservations, chunks, getattr(resp, "usage_requested", False))

    async def _chunks(self, call: Call, reservations: list, chunks, usage_requested: bool = False
                      ) -> AsyncIterator[dict]:
        """The caller's chunks; settles and records the call once, with the provider's usage when it reports it.

        `usage_requested`: the broker asked the provider for a usage chunk that the caller did not ask for
        (provider.py): it is not forwarded, and the call is settled with it after the caller's stream ended.
        """
        last, error, streamed = None, None, 0
        pending = _choices_to_finish(call.request.params)  # None: the caller asked for a usage chunk
        deferred = False
        try:
            async for chunk in chunks:
                choices = chunk.get("choices") or ()
                if usage_requested and not choices and usage_of(chunk) is not None:
                    last = chunk  # the usage chunk the broker asked for: for the ledger, not for the caller
                    continue
                last = chunk
                for choice in choices:  # what was streamed: settles a cut stream
                    text = (choice.get("delta") or {}).get("content")
                    if isinstance(text, str):
                        streamed += len(text)
                    if pending is not None and choice.get("finish_reason"):
                        pending.discard(choice.get("index", 0))
                yield chunk
                if pending is not None and not pending:
                    # Every choice has finished, and its redactors released what they held: the answer
                    # is whole, so the caller's stream ends here. The provider's end (and the usage chunk
                    # the broker asked for) and litellm's end-of-stream work (stream_chunk_builder, cost)
                    # are read off the caller's path, so the pooled connection is still returned.
                    if usage_requested:  # settle and record with the provider's figures once they arrive
                        deferred = True
                        self._drain_later(chunks, call.model, lambda u: self._finish(
                            call, reservations, u or _streamed_usage(streamed), None), call.caller.user)
                    else:  # settle and record now (below), before the caller's end of stream
                        self._drain_later(chunks, call.model)
                    break
        except BaseException as exc:
            error = exc
            raise
        finally:
            if not deferred:
                if usage_of(last) is None:  # no usage chunk (the stream was cut, or the provider sends none)
                    last = _streamed_usage(streamed)
                await self._finish(call, reservations, last, error)

    def _drain_later(self, chunks, alias: str, settle=None, user: str | None = None) -> None:
        """Read the rest of a finished provider stream in the background (dropping anything in it); then
        `settle(the last chunk with usage, or None)` if given, for `user` (see `settled`)."""
        task = asyncio.ensure_future(self._drain(chunks, alias, settle))
        self._drains[task] = user if settle is not None else None
        task.add_done_callback(self._drains.pop)

    async def settled(self, user: str, timeout: float = 2.0) -> None:
        """Wait (at most `timeout` s) until `user`'s finished streams are settled and recorded, so that
        `status` and the recent calls read what the user has just done. Never raises."""
        tasks = [t for t, u in self._drains.items() if u == user]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def _drain(self, chunks, alias: str, settle=None) -> None:
        found: list = []

        async def read_to_end():
            async for chunk in chunks:
                if usage_of(chunk) is not None:
                    found.append(chunk)
                elif self.log:
                    self.log.debug("SecureLLM: model %r sent a chunk after every choice finished; dropped", alias)

        try:
            # a provider that holds the stream open after its answer is not waited for long
            await within(read_to_end(), DRAIN_TIMEOUT)
        except BaseException as exc:  # noqa: BLE001 - the answer is complete; the connection is dropped either way
            if self.log:
                self.log.debug("SecureLLM: reading the end of a finished stream of %r: %s", alias,
                               type(exc).__name__)
            if not isinstance(exc, Exception):
                raise
        finally:
            try:
                await chunks.aclose()
            finally:
                if settle is not None:  # also when cancelled at shutdown: never an unrecorded call
                    await settle(found[-1] if found else None)

    def _call_for(self, caller: Caller, body: Any) -> Call:
        """Step 1: a validated request (BrokerError 400/404 before any governor runs)."""
        req = ChatRequest.from_body(body, self.models)
        return Call(caller, "chat", req, model=req.model.alias, stream=req.stream)

    async def _admit(self, call: Call, reservations: list):
        """Steps 2-5. Nothing has left the server when this returns or raises."""
        for g in self.governors:
            await g.authorize(call)
        req = call.request
        messages, params, findings = self.dlp.check(req.messages, req.params)
        endpoint = endpoint_for(req.model, self.allowed_hosts, req.api_base)
        if findings:
            call = replace(call, findings=tuple((f["rule_id"], f["fingerprint"]) for f in findings))
        for g in self.governors:
            reservations.append((g, await g.reserve(call)))
        return call, messages, params, endpoint

    async def _authorize_only(self, caller: Caller, action: str) -> None:
        """`models` and `status` are decided by the governors too (policy); nothing to reserve or settle."""
        call = Call(caller, action, None)
        for g in self.governors:
            await g.authorize(call)

    async def _finish(self, call: Call, reservations: list, answer, error) -> None:
        """Settle every reservation, then record the call; reverse governor order; never raises."""
        usage = usage_of(answer)
        if error is None:
            outcome = Outcome(usage=usage)
        elif isinstance(error, BrokerError):
            outcome = Outcome(error_type=error.type, usage=usage, status=error.status)
        else:  # the client went away, or an internal error: not an answer
            outcome = Outcome(error_type="incomplete", usage=usage, status=0)
        for g, token in reversed(reservations):
            await self._quietly(g.settle(call, token, usage), g, "settle")
        for g in reversed(self.governors):
            await self._quietly(g.record(call, outcome), g, "record")

    async def _quietly(self, coro, governor, step: str) -> None:
        try:
            await coro
        except Exception as exc:  # noqa: BLE001 - the answer is given; a governor failure is an admin matter
            if self.log:
                self.log.error("SecureLLM: governor %s.%s failed: %s", type(governor).__name__, step,
                               self.redactor.redact(f"{type(exc).__name__}: {exc}"))

    # -- secrets, models, status --------------------------------------------------------------------
    async def get_user_secret(self, caller: Caller, body: Any) -> dict:
        path, key = parse_secret_request(body)
        self.user_secrets.check_path(path, caller.user)
        call = Call(caller, "secret", {"path": path, "key": key})
        value, error = None, None
        try:
            for g in self.governors:
                await g.authorize(call)
            value = await self.user_secrets.read(path, key, caller.user)
            return {"value": value}
        except BrokerError as exc:
            error = exc
            raise
        finally:
            await self._finish(call, [], {} if value is not None else None, error)

    def list_models(self) -> dict:
        return {"object": "list",
                "data": [{"id": a, "object": "model", "owned_by": "jupyter-securellm"} for a in sorted(self.models)]}

    async def status(self, caller: Caller, version: str) -> dict:
        await self.settled(caller.user)  # the budget includes the stream the user has just finished
        try:
            vs = await asyncio.wait_for(self.keys.run(self.vault.status), 10)
        except Exception as exc:  # noqa: BLE001 - status reports Vault as unreachable, it never fails
            if self.log:
                self.log.info("SecureLLM: Vault status check failed: %s", type(exc).__name__)
            vs = {}
        vault = {
            "url": str(vs.get("url", "")),
            "reachable": bool(vs.get("reachable", False)),
            "sealed": vs.get("sealed") if isinstance(vs.get("sealed"), bool) else None,
            "auth_method": str(vs.get("auth_method", "")),
        }
        body = {"broker": "ok", "version": version, "user": caller.user, "vault": vault,
                "models": sorted(self.models), "budget": None, "alerts": []}
        for g in self.governors:  # governors that keep budgets or alerts fill `budget` and `alerts`
            fields = getattr(g, "status_fields", None)
            if fields is not None:
                try:
                    body.update(await fields(caller))
                except Exception as exc:  # noqa: BLE001 - status never fails
                    if self.log:
                        self.log.warning("SecureLLM: status fields of %s failed: %s", type(g).__name__,
                                         type(exc).__name__)
        return body

    def remember_secret(self, value: str, provider_key: bool = False) -> None:
        """Register a secret with the redactor (and the DLP scanner) once."""
        self.keys.remember(value, provider_key)

    async def aclose(self) -> None:
        for task in list(self._drains):
            task.cancel()
        if self._drains:
            await asyncio.gather(*self._drains, return_exceptions=True)
        await self.provider.aclose()
        self.keys.close()

