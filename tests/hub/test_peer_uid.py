"""server/peer.py: the uid on the other end of a loopback connection, read from /proc/net/tcp*.

The refusal across users is shown for real in test_tier3_service.py (Alice's kernel presenting Bob's
token to Bob's server); here the lookup itself, on sockets of this process.
"""
from __future__ import annotations

import os
import socket

import pytest

from jupyter_securellm.server.peer import loopback_peer_uid


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_loopback_peer_uid_is_ours(family, host):
    with socket.socket(family, socket.SOCK_STREAM) as srv:
        try:
            srv.bind((host, 0))
        except OSError:
            pytest.skip(f"{host} not available on this machine")
        srv.listen(1)
        with socket.create_connection(srv.getsockname()[:2]) as cli:
            conn, _ = srv.accept()
            with conn:
                assert loopback_peer_uid(conn) == os.getuid()
                assert loopback_peer_uid(cli) == os.getuid()


def test_unknown_when_not_connected():
    with socket.socket() as s:
        assert loopback_peer_uid(s) is None
    assert loopback_peer_uid(None) is None
