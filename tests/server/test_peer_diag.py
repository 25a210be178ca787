"""server/peer.py asks the kernel for one socket's owner (sock_diag) instead of scanning /proc/net/tcp.

The scan made the kernel print every socket of the machine on each kernel call: 10-20 ms on this shared
box (~4,700 sockets), all of it added to every broker call. Here: both ways give the same uid, for this
process and for a process of another user (`nobody`), and the sock_diag lookup is far cheaper.
"""
from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time

import pytest

from jupyter_securellm.server.peer import _proc_peer_uid, loopback_peer_uid, sock_diag_uid


def _pair(family=socket.AF_INET, host="127.0.0.1"):
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(4)
    return srv


def test_sock_diag_and_proc_agree_on_our_own_socket():
    with _pair() as srv, socket.create_connection(srv.getsockname()[:2]) as cli:
        conn, _ = srv.accept()
        with conn:
            peer, local = conn.getpeername(), conn.getsockname()
            assert sock_diag_uid(socket.AF_INET, peer, local) == os.getuid()
            assert _proc_peer_uid(peer, local) == os.getuid()
            assert loopback_peer_uid(conn) == os.getuid()
            # a connection that does not exist is unknown, not anyone's
            assert sock_diag_uid(socket.AF_INET, ("127.0.0.1", 1), local) is None


def test_an_ipv4_client_of_an_ipv6_listener_is_found():
    try:
        srv = _pair(socket.AF_INET6, "::")
    except OSError:
        pytest.skip("no IPv6 listener on this machine")
    with srv, socket.create_connection(("127.0.0.1", srv.getsockname()[1])) as cli:
        conn, _ = srv.accept()
        with conn:
            assert conn.getpeername()[0].startswith("::ffff:127.0.0.1")
            assert loopback_peer_uid(conn) == os.getuid()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_a_client_of_another_user_is_named():
    nobody = 65534
    with _pair() as srv:
        port = srv.getsockname()[1]
        client = subprocess.Popen(
            ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c",
             f"import socket,sys; s=socket.create_connection(('127.0.0.1',{port})); sys.stdin.read()"],
            stdin=subprocess.PIPE)
        try:
            srv.settimeout(30)
            conn, _ = srv.accept()
            with conn:
                peer, local = conn.getpeername(), conn.getsockname()
                assert sock_diag_uid(socket.AF_INET, peer, local) == nobody
                assert _proc_peer_uid(peer, local) == nobody
                assert loopback_peer_uid(conn) == nobody
        finally:
            client.stdin.close()
            client.wait(timeout=30)


def test_the_lookup_is_cheap():
    with _pair() as srv, socket.create_connection(srv.getsockname()[:2]) as cli:
        conn, _ = srv.accept()
        with conn:
            peer, local = conn.getpeername(), conn.getsockname()

            def timed(fn, n):
                out = []
                for _ in range(n):
                    t = time.perf_counter()
                    fn()
                    out.append(time.perf_counter() - t)
                return statistics.median(out) * 1e3

            diag = timed(lambda: sock_diag_uid(socket.AF_INET, peer, local), 50)
            proc = timed(lambda: _proc_peer_uid(peer, local), 10)
            with open("/proc/net/tcp") as f:
                sockets = sum(1 for _ in f) - 1
            print(f"\npeer uid lookup: sock_diag {diag:.3f} ms, /proc/net/tcp scan {proc:.3f} ms "
                  f"({sockets} IPv4 sockets on this machine)", file=sys.stderr)
            assert diag < 2.0, f"sock_diag took {diag:.2f} ms"
