"""Which Unix user is on the other end of a loopback TCP connection (Linux, /proc/net/tcp*).

Why: on a machine where several users' servers listen on 127.0.0.1 (JupyterHub's local-process
spawner), a kernel capability token is a bearer token. If one leaked, another user's process could
present it to this server's port. The kernel it was issued to always runs under this server's uid, so
a token arriving from a socket owned by another uid is refused. Not applicable (None) off Linux, for
non-loopback peers (remote kernels, Kubernetes pods, which network policy separates) or when the
socket is not found.

How: one sock_diag netlink request for exactly that connection (what `ss` uses; unprivileged), which
costs tens of microseconds whatever the machine holds. The fallback, scanning /proc/net/tcp*, makes the
kernel print every socket of the namespace: with ~4,700 sockets on a shared box that took 10-20 ms per
kernel call (measured under load), all of it added to every broker call from a kernel.
"""
from __future__ import annotations

import ipaddress
import socket
import struct

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NOCOOKIE = 0xFFFFFFFF
_ALL_STATES = 0xFFFFFFFF


def _addr16(family: int, ip: str) -> bytes:
    raw = socket.inet_pton(family, ip)
    return raw + b"\0" * (16 - len(raw))


def sock_diag_uid(family: int, src: tuple, dst: tuple) -> int | None:
    """The uid owning the TCP socket src -> dst (ip, port), asked of the kernel by sock_diag; None if none.

    OSError when netlink sock_diag is unavailable (non-Linux, or a sandbox that forbids it).
    """
    sockid = (struct.pack("!HH", src[1], dst[1]) + _addr16(family, src[0]) + _addr16(family, dst[0])
              + struct.pack("=III", 0, _NOCOOKIE, _NOCOOKIE))
    req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, _ALL_STATES) + sockid
    msg = struct.pack("=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0) + req
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        nl.sendto(msg, (0, 0))
        data = nl.recv(65536)
    if len(data) < 16:
        return None
    _, kind = struct.unpack_from("=IH", data)
    if kind == _NLMSG_ERROR:  # -ENOENT: no such socket
        return None
    if kind != _SOCK_DIAG_BY_FAMILY or len(data) < 16 + 4 + 48 + 16:
        return None
    # inet_diag_msg: family, state, timer, retrans (4 bytes), id (48), expires, rqueue, wqueue, uid, inode
    return struct.unpack_from("=I", data, 16 + 4 + 48 + 12)[0]


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
    # the peer's socket goes from its address to ours; an IPv4 client of an IPv6 listener is an IPv4 socket
    family, p_ip, l_ip = (socket.AF_INET6, str(ip), local[0].split("%")[0]) if ip.version == 6 and mapped is None \
        else (socket.AF_INET, str(mapped or ip), str(_v4(local[0])))
    try:
        uid = sock_diag_uid(family, (p_ip, peer[1]), (l_ip, local[1]))
    except (OSError, ValueError):
        uid = None  # no sock_diag here
    # not found that way (e.g. an IPv6 socket speaking to a mapped IPv4 address): scan /proc, never guess
    return uid if uid is not None else _proc_peer_uid(peer, local)


def _v4(addr: str):
    ip = ipaddress.ip_address(addr.split("%")[0])
    return getattr(ip, "ipv4_mapped", None) or ip


def _proc_peer_uid(peer, local) -> int | None:
    """The fallback: find the peer's socket in /proc/net/tcp* (slow when the machine holds many sockets)."""
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
