"""Thin REST handlers for `/jupyter-securellm/v1/`: authenticate, parse, call the broker, answer.

Two ways in: a kernel sends `X-SecureLLM-Token` (its capability token); a browser uses
normal Jupyter auth (`@tornado.web.authenticated` then `@authorized`, resource
`jupyter_securellm:llm`). Every error is `{"error": {"type", "message"}}`.
"""
from __future__ import annotations

import asyncio
import functools
import json
import os

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.iostream import StreamClosedError

from ..protocol import PREFIX, STATUS_TYPE, TOKEN_HEADER
from .errors import BrokerError
from .governor import Caller
from .schema import MAX_DEPTH, parse_body

AUTH_RESOURCE = "jupyter_securellm:llm"


def broker_auth(method):
    """Kernel token if the header is present, else Jupyter auth; BrokerError -> JSON error."""
    @functools.wraps(method)
    async def as_owner(self, *args, **kwargs):
        # only reached once Jupyter auth passed: then ask the Hub for the owner's groups
        app = self.settings["jupyter_securellm_app"]
        self.caller = Caller(user=app.owner, groups=await app.caller_groups(), source_addr=self.request.remote_ip)
        return await method(self, *args, **kwargs)

    jupyter_auth = web.authenticated(authorized(resource=AUTH_RESOURCE)(as_owner))

    @allow_unauthenticated  # we authenticate ourselves, below, on every path
    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        try:
            token = self.request.headers.get(TOKEN_HEADER)
            if token is not None:
                tokens = self.settings["jupyter_securellm_kernel_tokens"]
                principal = tokens.check(token)
                if principal is None:
                    gone = tokens.revoked(token)
                    governance = self.settings.get("jupyter_securellm_governance")
                    if gone is not None and governance is not None:  # a copied token outlived its kernel
                        governance.stale_token(gone.user, gone.kernel_id)
                    raise BrokerError("unauthorized", "The kernel token is invalid or revoked; "
                                                      "restart the kernel to get a fresh one.")
                app = self.settings["jupyter_securellm_app"]
                if app.kernel_token_peer_check and not _peer_is_us(self):
                    raise BrokerError("unauthorized", "This kernel token was sent by another Unix user's process; "
                                                      "kernel tokens work only from the kernel they were issued to.")
                self.caller = Caller(user=principal.user, kernel_id=principal.kernel_id,
                                     groups=await app.caller_groups(), source_addr=self.request.remote_ip,
                                     notebook_path=await _notebook_path(self, principal.kernel_id))
                return await method(self, *args, **kwargs)
            self.caller = Caller(user=self.settings["jupyter_securellm_app"].owner)
            return await jupyter_auth(self, *args, **kwargs)
        except BrokerError as exc:
            self.send_broker_error(exc)

    return wrapper


async def _notebook_path(handler, kernel_id: str) -> str | None:
    """The path of the Jupyter session that owns `kernel_id`, or None (no session, or the lookup failed).

    Asked on every kernel call, not cached, so a renamed notebook shows its new path: one query on the
    server's in-memory session table. Informational only (policy input, audit), so it never fails a call.
    """
    sm = handler.settings.get("session_manager")
    if sm is None:
        return None
    try:
        session = await sm.get_session(kernel_id=kernel_id)  # 404 HTTPError when the kernel has no session
    except Exception:  # noqa: BLE001 - a kernel without a notebook (console, bare /api/kernels) is normal
        return None
    path = session.get("path") if isinstance(session, dict) else None
    return path if isinstance(path, str) and path else None


def _peer_is_us(handler) -> bool:
    """False only when the caller is provably a loopback socket of another uid (server/peer.py)."""
    import os

    from .peer import loopback_peer_uid

    stream = getattr(handler.request.connection, "stream", None)
    uid = loopback_peer_uid(getattr(stream, "socket", None)) if stream is not None else None
    return uid is None or uid == os.getuid()


class BaseHandler(ExtensionHandlerMixin, APIHandler):
    """Shared plumbing: the broker service, JSON bodies, contract-shaped errors."""

    auth_resource = AUTH_RESOURCE
    caller: Caller | None = None

    @property
    def broker(self):
        return self.settings["jupyter_securellm_broker"]

    def check_xsrf_cookie(self):
        # Kernel calls carry a custom header (a browser cannot send one cross-site without CORS
        # consent) and no cookie, so XSRF does not apply to them; browsers keep the normal check.
        if self.request.headers.get(TOKEN_HEADER) is not None:
            return None
        return super().check_xsrf_cookie()

    def json_body(self, limit: int | None = None, max_depth: int = MAX_DEPTH):
        """The body as JSON, strictly (server/schema.py: size, NaN, surrogates, depth): else a 400."""
        if limit is None:
            limit = self.settings.get("jupyter_securellm_max_request_bytes", 2 * 1024 * 1024)
        return parse_body(self.request.body, limit, max_depth)

    def send_broker_error(self, exc: BrokerError):
        if self._finished:
            return
        self.clear()
        self.set_status(exc.status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(exc.to_json()))

    def write_error(self, status_code, **kwargs):
        # Jupyter's own 403/404/405/500 in the contract's shape; never a traceback.
        type_ = STATUS_TYPE.get(status_code) or ("invalid_request" if status_code < 500 else "provider_error")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if status_code == 403 and not getattr(self, "current_user", None):
            message = "Authentication required: log in to Jupyter or send the kernel's X-SecureLLM-Token."
        elif isinstance(exc, web.HTTPError) and exc.log_message and status_code < 500:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif status_code >= 500:
            message = "Internal broker error; see the server log."
        else:
            message = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"type": type_, "message": str(message)}}))


class ChatCompletionsHandler(BaseHandler):
    @broker_auth
    async def post(self):
        body = self.json_body()
        if isinstance(body, dict) and body.get("stream") is True:
            return await self._stream(body)
        result = await self.broker.dispatch(self.caller, "chat", body)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(result))

    async def _stream(self, body):
        chunks = await self.broker.dispatch(self.caller, "chat", body)  # errors here are plain JSON errors
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        sse = _SSEWriter(self)
        try:
            try:
                async for chunk in chunks:
                    await sse.send(_event(chunk))
            except BrokerError as exc:
                self.write(_event(exc.to_json()))
            else:
                self.write(b"data: [DONE]\n\n")
            sse.check()
            if not self._headers_written:
                # Every event arrived before the loop let a scheduled flush run (a forwarded stream read in
                # one piece): send the headers as set above, or Jupyter's APIHandler.finish() would label
                # the whole event stream application/json.
                self.flush()
            self.finish()
        except StreamClosedError:
            self.log.info("SecureLLM: client closed the stream early")
        finally:
            await chunks.aclose()


def _event(obj) -> bytes:
    """One SSE event, serialised once, compact (no spaces: ~10 % fewer bytes to send and to parse).

    A prebuilt encoder: `json.dumps` with any non-default argument builds a new encoder per call.
    ASCII-only output, so the encode is a copy.
    """
    return b"data: " + _ENCODE(obj).encode() + b"\n\n"


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class _SSEWriter:
    """Writes SSE events, coalescing those that are ready together into one flush (one send()).

    A flush is scheduled with `call_soon` after the first event of a batch: it runs as soon as the
    handler waits for the next chunk, so the first byte is never delayed, while chunks that litellm
    already has buffered are written by the same flush. Backpressure as before: a new batch waits
    until the previous flush reached the socket, and a closed connection raises StreamClosedError.
    """

    __slots__ = ("handler", "_loop", "_scheduled", "_flushing")

    def __init__(self, handler):
        self.handler = handler
        self._loop = asyncio.get_running_loop()
        # Each event is a small write: without TCP_NODELAY, Nagle holds it until the previous one is
        # ACKed, and a client's delayed ACK makes that ~40 ms per hop (tornado resets it on finish).
        stream = getattr(handler.request.connection, "stream", None)
        if stream is not None:
            stream.set_nodelay(True)
        self._scheduled = False
        self._flushing = None

    async def send(self, data: bytes) -> None:
        self.handler.write(data)
        if self._scheduled:
            return
        if self._flushing is not None:
            flushing, self._flushing = self._flushing, None
            await flushing  # raises StreamClosedError once the client is gone
        self._scheduled = True
        self._loop.call_soon(self._flush)

    def check(self) -> None:
        """Raise StreamClosedError if the last flush found the connection closed."""
        if self._flushing is not None and self._flushing.done():
            self._flushing.result()

    def _flush(self) -> None:
        self._scheduled = False
        if self.handler._finished:  # finish() already sent everything
            return
        fut = self.handler.flush()
        fut.add_done_callback(_retrieve)  # never "exception was never retrieved" after a hang-up
        self._flushing = fut


def _retrieve(fut) -> None:
    if not fut.cancelled():
        fut.exception()


class ModelsHandler(BaseHandler):
    @broker_auth
    async def get(self):
        self.finish(json.dumps(await self.broker.dispatch(self.caller, "models")))


class StatusHandler(BaseHandler):
    @broker_auth
    async def get(self):
        version = self.settings.get("jupyter_securellm_version", "")
        body = await self.broker.dispatch(self.caller, "status", {"version": version})
        body.setdefault("groups", list(self.caller.groups))  # the Hub's, when on a Hub
        redactor = self.settings.get("jupyter_securellm_redactor")
        if redactor is not None:  # for `jupyter-securellm doctor`: flags and names, never values
            from .hardening import process_report

            body["process"] = process_report(redactor.scanner)
        # the trust tier this deployment defends (docs/architecture.md); a Hub service answers 3 itself:
        # the key in this server's memory is out of the kernel's reach only when the server is non-dumpable
        body.setdefault("tier", 2 if body.get("process", {}).get("dumpable") is False else 1)
        self.finish(json.dumps(body))


class SecretsGetHandler(BaseHandler):
    @broker_auth
    async def post(self):
        result = await self.broker.dispatch(self.caller, "secret", self.json_body())
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(result))


class ScanHandler(BaseHandler):
    """Scan the notebook open in the browser (the Lab command "Scan notebook for secrets")."""

    @broker_auth
    async def post(self):
        from .scan import SCAN_MAX_BYTES, scan_notebook

        hook = self.settings.get("jupyter_securellm_save_hook")
        if hook is None:
            raise BrokerError("not_found", "The notebook scanner is not running on this server.")
        redact = self.get_query_argument("redact", "false").lower() in ("1", "true", "yes")
        body = self.json_body(SCAN_MAX_BYTES, max_depth=512)  # a notebook's outputs nest deeper than a prompt
        result = scan_notebook(hook, body, self.contents_manager, redact=redact)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(result))


class RecentCallsHandler(BaseHandler):
    """The caller's last calls from the audit log (time, model, tokens, status; never prompts)."""

    @broker_auth
    async def get(self):
        from .recent import recent_calls

        path = getattr(self.settings.get("jupyter_securellm_app"), "audit_log_path", "")
        if not path:
            raise BrokerError("not_found", "The audit log is not configured (c.SecureLLM.audit_log_path).")
        try:
            limit = int(self.get_query_argument("limit", "10"))
        except ValueError:
            raise BrokerError("invalid_request", "limit must be a whole number.") from None
        settled = getattr(self.broker, "settled", None)
        if settled is not None:  # the stream the user has just finished is recorded a moment after its end
            await settled(self.caller.user)
        calls = await asyncio.get_running_loop().run_in_executor(
            None, recent_calls, os.path.expanduser(path), self.caller.user, limit)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"calls": calls}))


class MetricsHandler(BaseHandler):
    """Prometheus text format (prometheus-client), authenticated like every broker endpoint."""

    @broker_auth
    async def get(self):
        governance = self.settings.get("jupyter_securellm_governance")
        if governance is None:
            raise BrokerError("not_found", "Metrics are not available on this server.")
        metrics = governance.gov.metrics
        self.set_header("Content-Type", metrics.content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(metrics.render())


default_handlers = [
    (rf"/{PREFIX}/chat/completions", ChatCompletionsHandler),
    (rf"/{PREFIX}/models", ModelsHandler),
    (rf"/{PREFIX}/status", StatusHandler),
    (rf"/{PREFIX}/secrets/get", SecretsGetHandler),
    (rf"/{PREFIX}/scan", ScanHandler),
    (rf"/{PREFIX}/audit/recent", RecentCallsHandler),
    (rf"/{PREFIX}/metrics", MetricsHandler),
]
