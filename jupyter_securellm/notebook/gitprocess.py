"""git's long-running filter protocol (``filter.<driver>.process``, version 2).

With a plain ``clean`` command git starts one Python process per file, about 0.15 s each; ``git add``
of a hundred notebooks then waits 15 s. With ``process`` git starts the filter once per command and
streams every file through it. Protocol: gitattributes(5), "Long Running Filter Process".
"""
from __future__ import annotations

MAX_PACKET_DATA = 65516
FLUSH = b"0000"


class ProtocolError(Exception):
    pass


def _read_exact(stream, n: int) -> bytes:
    buf = stream.read(n)
    if buf is None or len(buf) != n:
        raise EOFError
    return buf


def read_packet(stream) -> bytes | None:
    """One pkt-line payload, or None for a flush packet."""
    head = _read_exact(stream, 4)
    try:
        size = int(head, 16)
    except ValueError:
        raise ProtocolError(f"bad pkt-line header {head!r}") from None
    if size == 0:
        return None
    if size < 4:
        raise ProtocolError(f"bad pkt-line length {size}")
    return _read_exact(stream, size - 4)


def read_text_list(stream) -> list:
    """Text packets ("key=value\\n") up to the next flush."""
    items = []
    while True:
        pkt = read_packet(stream)
        if pkt is None:
            return items
        items.append(pkt.decode("utf-8", "surrogateescape").rstrip("\n"))


def read_content(stream) -> bytes:
    parts = []
    while True:
        pkt = read_packet(stream)
        if pkt is None:
            return b"".join(parts)
        parts.append(pkt)


def write_text(stream, *lines: str) -> None:
    for line in lines:
        data = (line + "\n").encode("utf-8", "surrogateescape")
        stream.write(b"%04x" % (len(data) + 4) + data)


def write_content(stream, data: bytes) -> None:
    view = memoryview(data)
    for i in range(0, len(view), MAX_PACKET_DATA):
        chunk = view[i : i + MAX_PACKET_DATA]
        stream.write(b"%04x" % (len(chunk) + 4))
        stream.write(chunk)
    stream.write(FLUSH)


def serve(stdin, stdout, clean, log) -> int:
    """Answer git until it closes the pipe. ``clean(pathname, data) -> bytes`` raises to refuse a file
    (git then fails that file, and with ``required = true`` the whole command)."""
    if read_text_list(stdin) != ["git-filter-client", "version=2"]:
        raise ProtocolError("not a git filter client speaking version 2")
    write_text(stdout, "git-filter-server", "version=2")
    stdout.write(FLUSH)
    offered = {item.split("=", 1)[1] for item in read_text_list(stdin) if item.startswith("capability=")}
    wanted = [c for c in ("clean", "smudge") if c in offered]
    write_text(stdout, *(f"capability={c}" for c in wanted))
    stdout.write(FLUSH)
    stdout.flush()
    while True:
        try:
            header = read_text_list(stdin)
        except EOFError:
            return 0
        meta = dict(item.split("=", 1) for item in header if "=" in item)
        data = read_content(stdin)
        command, pathname = meta.get("command"), meta.get("pathname", "")
        try:
            if command == "clean":
                out = clean(pathname, data)
            elif command == "smudge":
                out = data  # the working copy gets what is stored (smudge = cat)
            else:
                raise ProtocolError(f"unsupported command {command!r}")
        except Exception as exc:  # noqa: BLE001 - reported per file; git decides what fails
            log(pathname, exc)
            write_text(stdout, "status=error")
            stdout.write(FLUSH)
            stdout.flush()
            continue
        write_text(stdout, "status=success")
        stdout.write(FLUSH)
        write_content(stdout, out)
        stdout.write(FLUSH)  # empty list: the status stays "success"
        stdout.flush()
