"""The broker's pooled HTTP transport, with quick ACKs so a provider's socket options cannot slow it.

The latency trap: a provider that writes response headers and body in two TCP segments without
TCP_NODELAY (http.server-style local model servers) sends the body only once the headers are ACKed
(Nagle). A pooled keep-alive connection is in Linux's delayed-ACK ("pingpong") mode after the first
exchanges, so the client ACKs the headers only after its delayed-ACK timer (~40 ms): every call
through the broker took ~50 ms against such a server, while a fresh connection (quick-ACK mode) took
~7 ms. Fix, on our side only: after each request is written, set TCP_QUICKACK on the socket, which
leaves pingpong mode, so the headers are ACKed as soon as they are read and the body follows at once.
Measured: pooled httpx 47 ms -> 0.9 ms per call against such a server (docs/broker.md).

Built on httpcore's public network-backend interface; a non-Linux system simply skips the option.

TLS per model: a model may name its own CA bundle (a private HTTPS model server), so the transport keeps
one pool per TLS setting and picks it by the request's origin (scheme, host, port). The egress guard has
already refused any request that leaves the call's own endpoint, so the origin is the model's.
"""
from __future__ import annotations

import os
import socket
import ssl

import httpcore
import httpx

TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _QuickAckStream(httpcore.AsyncNetworkStream):
    __slots__ = ("_inner", "_sock")

    def __init__(self, inner):
        self._inner = inner
        self._sock = inner.get_extra_info("socket") if TCP_QUICKACK is not None else None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)
        if self._sock is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
            except OSError:  # a closed socket: the next read reports it
                self._sock = None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return _QuickAckStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class QuickAckBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend, with quick ACKs after every write (see the module docstring)."""

    def __init__(self):
        from httpcore._backends.auto import AutoBackend

        self._inner = AutoBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return _QuickAckStream(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def ssl_context_for(verify) -> ssl.SSLContext:
    """An SSL context for `verify`: an SSLContext as is, a CA bundle path (file or directory), True or False."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        return ssl.create_default_context(**({"capath": verify} if os.path.isdir(verify) else {"cafile": verify}))
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return httpx.create_ssl_context()


_DEFAULT_PORTS = {b"http": 80, b"https": 443}


class QuickAckTransport(httpx.AsyncBaseTransport):
    """An httpx transport over httpcore pools that use QuickAckBackend (HTTP/1.1, keep-alive).

    `verify` is the TLS setting of every origin not in `per_origin`, which maps (scheme, host, port)
    to a model's own setting (a CA bundle path, or False); each distinct setting gets its own pool.
    """

    def __init__(self, *, verify=True, per_origin: dict | None = None,
                 limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)):
        self._limits = limits
        self._pools: dict = {}
        self._default = self._pool_for(verify)
        self._by_origin = {(scheme.encode(), host.encode(), port): self._pool_for(v)
                           for (scheme, host, port), v in (per_origin or {}).items()}

    def _pool_for(self, verify) -> httpcore.AsyncConnectionPool:
        key = id(verify) if isinstance(verify, ssl.SSLContext) else verify
        pool = self._pools.get(key)
        if pool is None:
            limits = self._limits
            pool = self._pools[key] = httpcore.AsyncConnectionPool(
                ssl_context=ssl_context_for(verify), max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry, http1=True, http2=False,
                network_backend=QuickAckBackend())
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        pool = self._default
        if self._by_origin:
            origin = (url.raw_scheme, url.raw_host.lower(), url.port or _DEFAULT_PORTS.get(url.raw_scheme))
            pool = self._by_origin.get(origin, self._default)
        req = httpcore.Request(method=request.method,
                               url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                                                port=request.url.port, target=request.url.raw_path),
                               headers=request.headers.raw, content=request.stream,
                               extensions=request.extensions)
        try:
            resp = await pool.handle_async_request(req)
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc), request=request) from exc
        except httpcore.NetworkError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except httpcore.ProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        return httpx.Response(status_code=resp.status, headers=resp.headers, stream=_Body(resp.stream),
                              extensions=resp.extensions)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


def pooled_client(*, timeout: float, verify=True, per_origin: dict | None = None,
                  event_hooks: dict | None = None) -> httpx.AsyncClient:
    """The broker's provider client (litellm.aclient_session): quick-ACK pools, per-origin TLS, no redirects.

    One place, so benchmarks/bench_broker.py can give direct litellm exactly the broker's transport.
    """
    return httpx.AsyncClient(transport=QuickAckTransport(verify=verify, per_origin=per_origin),
                             follow_redirects=False, event_hooks=event_hooks or {},
                             timeout=httpx.Timeout(timeout))


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream):
        self._stream = stream

    async def __aiter__(self):
        try:
            async for part in self._stream:
                yield part
        except httpcore.ReadTimeout as exc:
            raise httpx.ReadTimeout(str(exc)) from exc
        except httpcore.NetworkError as exc:
            raise httpx.ReadError(str(exc)) from exc
        except httpcore.ProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()
