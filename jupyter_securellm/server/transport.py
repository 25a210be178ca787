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
"""
from __future__ import annotations

import socket

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


class QuickAckTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool that uses QuickAckBackend (HTTP/1.1, keep-alive)."""

    def __init__(self, *, verify=True, limits: httpx.Limits = httpx.Limits(max_connections=100,
                                                                           max_keepalive_connections=20)):
        # httpx builds the SSL context exactly as its own transport would; the pool is ours
        ssl_context = httpx.create_ssl_context(verify=verify) if not hasattr(verify, "wrap_socket") else verify
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            http1=True, http2=False, network_backend=QuickAckBackend())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        req = httpcore.Request(method=request.method,
                               url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                                                port=request.url.port, target=request.url.raw_path),
                               headers=request.headers.raw, content=request.stream,
                               extensions=request.extensions)
        try:
            resp = await self._pool.handle_async_request(req)
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc), request=request) from exc
        except httpcore.NetworkError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except httpcore.ProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        return httpx.Response(status_code=resp.status, headers=resp.headers, stream=_Body(resp.stream),
                              extensions=resp.extensions)

    async def aclose(self) -> None:
        await self._pool.aclose()


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
