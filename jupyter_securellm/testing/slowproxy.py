"""A TCP proxy that holds each request for `delay` seconds before passing it on: a slow Vault (or any
slow upstream) for fault tests, without touching the real server behind it.

    with SlowProxy(openbao.url) as proxy:   # proxy.url points at the same server
        proxy.delay = 5.5                   # from now on each request waits 5.5 s

A "request" is the first chunk a client sends on a connection or after the server last answered on
it, so each request of a keep-alive connection is held once, however many pieces it comes in. Answers are
passed back at once. `in_flight` counts requests being held now; `held` counts all requests held.
"""
from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit


class SlowProxy:
    def __init__(self, upstream_url: str, *, delay: float = 0.0):
        u = urlsplit(upstream_url)
        self.scheme, self.upstream = u.scheme, (u.hostname, u.port)
        self.delay = delay
        self.in_flight = self.held = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._closed = False
        self._conns: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> "SlowProxy":
        threading.Thread(target=self._accept, daemon=True, name="slowproxy").start()
        return self

    def stop(self) -> None:
        self._closed = True
        self._sock.close()
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self) -> "SlowProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._conns += [client, upstream]
            answered = [True]  # the next client chunk starts a request
            threading.Thread(target=self._pump, args=(client, upstream, answered, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, answered, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answered: list, requests: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not requests:
                    answered[0] = True
                elif answered[0] and self.delay > 0:
                    with self._lock:
                        self.in_flight += 1
                        self.held += 1
                    try:
                        time.sleep(self.delay)
                    finally:
                        with self._lock:
                            self.in_flight -= 1
                if requests:
                    answered[0] = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
