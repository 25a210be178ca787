"""Which Unix user is on the other end of a loopback TCP connection (Linux, /proc/net/tcp*).

Why: on a machine where several users' servers listen on 127.0.0.1 (JupyterHub's local-process
spawner), a kernel capability token is a bearer token. If one leaked, another user's process could
present it to this server's port. The kernel it was issued to always runs under this server's uid, so
a token arriving from a socket owned by another uid is refused. Not applicable (None) off Linux, for
non-loopback peers (remote kernels, Kubernetes pods, which network policy separates) or when the
socket is not found.
"""
from __future__ import annotations

import ipaddress


def loopback_peer_uid(sock) -> int | None:
    try:
        peer = sock.getpeername()
        local = sock.getsockname()
    except (OSError, AttributeError):
        return None
    try:
        ip = ipaddress.ip_address(peer[0].split("%")[0])
    except (ValueError, IndexError, TypeError):
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
        return None
    want_local, want_remote = f"{peer[1]:04X}", f"{local[1]:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) < 8:
                        continue
                    # the peer's socket: its local port is our peer's port, its remote port is ours
                    if parts[1].rsplit(":", 1)[-1] == want_local and parts[2].rsplit(":", 1)[-1] == want_remote:
                        return int(parts[7])
        except OSError:
            continue
    return None
