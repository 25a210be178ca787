"""The single-user side of tier 3: forward broker calls to the broker service, as this server's user.

With `c.SecureLLM.broker_mode = "hub-service"` a user's Jupyter server holds no key and no Vault
credential: it checks the kernel's capability token as before, then calls the service with its own
JupyterHub API token (`JUPYTERHUB_API_TOKEN`). The service asks the Hub whose token that is, so the
user is always this server's owner, whatever the request body says. The token needs
`access:services!service=<name>` (granted to the `server` role through `load_roles`).

Same interface as `server.broker.Broker` for the handlers: `dispatch(caller, action, body)`. Streams pass through chunk by chunk; the service's error types and
messages are kept (`{"error": {"type", "message"}}` in, the same BrokerError out).
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator
from urllib.parse import quote

from ..server.errors import STATUS, BrokerError

PREFIX = "jupyter-securellm/v1"
# The calling kernel's notebook path (its Jupyter session's, looked up by this server), percent-encoded.
# Declared by the user's server, so the service records it in the audit log and never decides on it.
NOTEBOOK_HEADER = "X-SecureLLM-Notebook"
MAX_NOTEBOOK_PATH = 1024


class HubServiceBroker:
    """Forwards every broker call to the JupyterHub service `service_name`."""

    def __init__(self, *, service_name: str, service_url: str, api_url: str, token: str, redactor=None,
                 request_timeout: float = 120.0, log=None):
        self.service_name = service_name
        self._service_url = service_url.rstrip("/") if service_url else ""
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.redactor = redactor
        self.request_timeout = request_timeout
        self.log = log
        self._client = None
        self._models_cache: dict | None = None
        self._lookup: asyncio.Future | None = None
        self._looked_up = False  # the URL came from the Hub API (forgotten when the service is unreachable)

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            from tornado.httpclient import AsyncHTTPClient

            self._client = AsyncHTTPClient(force_instance=True, max_clients=200)
        return self._client

    def _unavailable(self, why: str) -> BrokerError:
        return BrokerError("broker_unavailable",
                           f"The SecureLLM broker service {self.service_name!r} is unavailable ({why}); no call was "
                           "made. Retry in a moment, or ask your JupyterHub admin to check the service.")

    async def service_url(self) -> str:
        """The service's base URL: c.SecureLLM.hub_service_url, else the Hub's service record (cached).

        The lookup (`GET /hub/api/services/<name>` with this server's token) needs
        `read:services!service=<name>` on both the `user` and `server` roles (a server token holds only
        scopes its user holds). A looked-up URL is dropped when the service cannot be reached, so a
        service that moved is found again on the next call.
        """
        if self._service_url:
            return self._service_url
        if self._lookup is None or self._lookup.done() and (self._lookup.cancelled() or self._lookup.exception()):
            self._lookup = asyncio.ensure_future(self._look_up())  # concurrent first calls share one lookup
        url = await asyncio.shield(self._lookup)
        self._service_url = url
        return url

    async def _look_up(self) -> str:
        from tornado.httpclient import HTTPClientError

        name = self.service_name
        scope = f"read:services!service={name}"
        try:
            resp = await self.client.fetch(f"{self.api_url}/services/{quote(name, safe='')}", headers=self._headers(),
                                           request_timeout=10, raise_error=False)
        except (HTTPClientError, OSError) as exc:
            raise self._unavailable(f"the Hub API at {self.api_url} did not answer the lookup of its URL: "
                                    f"{type(exc).__name__}") from None
        if resp.code == 599:
            raise self._unavailable(f"the Hub API at {self.api_url} did not answer the lookup of its URL")
        if resp.code == 404:
            # the Hub answers 404 both for no such service and for one this token may not read
            raise self._unavailable(f"the Hub has no service named {name!r} that this server may read: check "
                                    f"c.SecureLLM.hub_service_name against c.JupyterHub.services, and {scope} "
                                    "on the `user` and `server` roles")
        if resp.code in (401, 403):
            raise self._unavailable(f"the Hub refused to look its URL up (HTTP {resp.code}): grant {scope} to the "
                                    "`user` and `server` roles, or set c.SecureLLM.hub_service_url")
        if resp.code >= 400:
            raise self._unavailable(f"the Hub API answered HTTP {resp.code} to the lookup of its URL")
        try:
            url = json.loads(resp.body).get("url") or ""
        except (ValueError, AttributeError):
            url = ""
        if not url:
            raise self._unavailable(f"the Hub gave no URL for it: register the service with a `url` (and grant {scope}), "
                                    "or set c.SecureLLM.hub_service_url")
        if self.log is not None:
            self.log.info("SecureLLM: the JupyterHub service %r is at %s (looked up in the Hub API)", name, url)
        self._looked_up = True
        return url.rstrip("/")

    def _forget_looked_up_url(self) -> None:
        if self._looked_up:
            self._service_url, self._lookup, self._looked_up = "", None, False

    async def _url(self, endpoint: str) -> str:
        return f"{await self.service_url()}/services/{quote(self.service_name, safe='')}/{PREFIX}/{endpoint}"

    def _headers(self, caller=None) -> dict:
        h = {"Authorization": f"token {self._token}", "Content-Type": "application/json"}
        if caller is not None and caller.kernel_id:
            h["X-SecureLLM-Kernel"] = caller.kernel_id  # a label for the audit log, not an identity
        path = getattr(caller, "notebook_path", None) if caller is not None else None
        if path and len(path) <= MAX_NOTEBOOK_PATH:
            h[NOTEBOOK_HEADER] = quote(path, safe="/")  # ASCII on the wire, whatever the file name
        return h

    def _error_from(self, status: int, body: bytes) -> BrokerError:
        try:
            err = json.loads(body)["error"]
            type_, message = err["type"], err["message"]
            extra = {k: v for k, v in err.items() if k not in ("type", "message")}
            if type_ in STATUS:
                return BrokerError(type_, message, **extra)
        except (ValueError, KeyError, TypeError):
            pass
        if status in (401, 403):
            return BrokerError("unauthorized", f"The broker service {self.service_name!r} refused this server's Hub "
                                               f"token (HTTP {status}); the server role needs the scope "
                                               f"access:services!service={self.service_name}.")
        return self._unavailable(f"HTTP {status}")

    async def _fetch(self, method: str, endpoint: str, body=None, caller=None) -> Any:
        from tornado.httpclient import HTTPClientError, HTTPRequest

        req = HTTPRequest(await self._url(endpoint), method=method, headers=self._headers(caller),
                          body=None if body is None else json.dumps(body), request_timeout=self.request_timeout + 10,
                          connect_timeout=10)
        try:
            resp = await self.client.fetch(req, raise_error=False)
        except (HTTPClientError, OSError) as exc:
            self._forget_looked_up_url()
            raise self._unavailable(type(exc).__name__) from None
        if resp.code == 599:
            self._forget_looked_up_url()
            raise self._unavailable("connection failed")
        if resp.code >= 400:
            raise self._error_from(resp.code, resp.body or b"")
        try:
            return json.loads(resp.body)
        except ValueError:
            raise self._unavailable("it sent a response that is not JSON") from None

    # -- the Broker interface ---------------------------------------------------------------------
    async def dispatch(self, caller, action: str, body: Any = None):
        """Same entry point as `server.broker.Broker.dispatch`: chat (dict or chunks), secret, models, status."""
        if action == "chat":
            stream = isinstance(body, dict) and body.get("stream") is True
            return await (self.chat_stream(caller, body) if stream else self.chat(caller, body))
        if action == "secret":
            return await self.get_user_secret(caller, body)
        if action == "models":
            return await self.list_models()
        if action == "status":
            return await self.status(caller, (body or {}).get("version", ""))
        raise BrokerError("not_found", f"Unknown broker action {action!r}.")

    def remember_secret(self, value: str, provider_key: bool = False) -> None:
        if value and self.redactor is not None:
            self.redactor.add_secret(value)

    async def chat(self, caller, body: Any) -> dict:
        return await self._fetch("POST", "chat/completions", body, caller)

    async def list_models(self) -> dict:
        return await self._fetch("GET", "models")

    async def status(self, caller, version: str) -> dict:
        st = await self._fetch("GET", "status", caller=caller)
        if isinstance(st, dict):
            st["via"] = f"hub-service:{self.service_name}"
        return st

    async def get_user_secret(self, caller, body: Any) -> dict:
        value = await self._fetch("POST", "secrets/get", body, caller)
        if isinstance(value, dict) and isinstance(value.get("value"), str):
            self.remember_secret(value["value"])  # redacted from this server's outputs and saves too
        return value

    async def chat_stream(self, caller, body: Any) -> AsyncIterator[dict]:
        """Start the stream; errors before the first byte raise here (same as the local broker)."""
        from tornado.httpclient import HTTPClientError, HTTPRequest

        queue: asyncio.Queue = asyncio.Queue()
        head: asyncio.Future = asyncio.get_running_loop().create_future()
        state = {"code": None, "buf": b""}

        def on_header(line: str) -> None:
            if line.startswith("HTTP/"):
                parts = line.split(" ", 2)
                state["code"] = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

        def on_chunk(data: bytes) -> None:
            if state.get("closed"):
                raise ConnectionAbortedError("the client left")  # makes tornado drop the connection
            if not head.done():
                head.set_result(state["code"])
            queue.put_nowait(data)

        req = HTTPRequest(await self._url("chat/completions"), method="POST", headers=self._headers(caller),
                          body=json.dumps(body), request_timeout=self.request_timeout * 10, connect_timeout=10,
                          header_callback=on_header, streaming_callback=on_chunk)
        fetch = asyncio.ensure_future(self.client.fetch(req, raise_error=False))

        def on_done(f):
            if not head.done():
                head.set_result(state["code"] if not f.exception() and f.result().code != 599 else 599)
            queue.put_nowait(None)

        fetch.add_done_callback(on_done)
        try:
            code = await head
        except (HTTPClientError, OSError) as exc:
            self._forget_looked_up_url()
            raise self._unavailable(type(exc).__name__) from None
        if code in (None, 599):
            self._forget_looked_up_url()
            raise self._unavailable("connection failed")
        if code >= 400:
            body_bytes = b""
            while (piece := await queue.get()) is not None:
                body_bytes += piece
            raise self._error_from(code, body_bytes)
        return self._events(queue, fetch, state)

    async def _events(self, queue: asyncio.Queue, fetch, state: dict) -> AsyncIterator[dict]:
        buf = b""
        try:
            while True:
                piece = await queue.get()
                if piece is None:
                    break
                buf += piece
                while b"\n\n" in buf:
                    event, buf = buf.split(b"\n\n", 1)
                    data = b"\n".join(ln[5:].lstrip() for ln in event.split(b"\n") if ln.startswith(b"data:"))
                    if not data:
                        continue
                    if data == b"[DONE]":
                        return
                    obj = json.loads(data)
                    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
                        raise self._error_from(502, data)
                    yield obj
            raise self._unavailable("the stream ended without [DONE]")
        finally:
            state["closed"] = True  # the client went away: the next chunk drops the connection to the service

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
