"""Live output redaction in the kernel: every way text leaves the kernel passes the redactor.

Why so many hooks: a secret can leave through print (possibly one character at a time), rich
display, execute results, tracebacks (any %xmode, locals included), logging and widget state.
Each hook is small and undoable; `Hooks` keeps the undo list so `%unload_ext` leaves nothing behind.
The engine (`jupyter_securellm.detect`) is imported on first use, not at `%load_ext`.
"""
from __future__ import annotations

import logging
import sys
import threading

from ..redacting import redact_json, redact_record

_REDACTOR = None
_REDACTOR_LOCK = threading.Lock()

# MIME types whose payload is binary (base64); scanning them is slow and pointless.
_BINARY_MIME_PREFIXES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "application/pdf",
                         "audio/", "video/", "application/octet-stream")


def get_redactor():
    """The one Redactor of this kernel process (known secrets + built-in rules), built lazily."""
    global _REDACTOR
    if _REDACTOR is None:
        with _REDACTOR_LOCK:
            if _REDACTOR is None:
                from jupyter_securellm.detect import Redactor

                _REDACTOR = Redactor()
    return _REDACTOR


def add_secret(value: str) -> None:
    """Register a known secret (raw value; the engine adds its encodings)."""
    if value:
        get_redactor().add_secret(value)


def redact(text):
    if not text:
        return text
    return get_redactor().redact(text)


def redact_obj(obj):
    """Redact every string inside JSON-like data (dicts, lists, tuples; keys too); other values pass."""
    return redact_json(obj, redact, redact_keys=True)


def redact_mimebundle(data):
    """Redact every text-like MIME entry of a display bundle (binary payloads are left alone)."""
    if not isinstance(data, dict):
        return data
    out = {}
    for mime, value in data.items():
        if isinstance(mime, str) and mime.startswith(_BINARY_MIME_PREFIXES):
            out[mime] = value
        else:
            out[mime] = redact_obj(value)
    return out


# ---------------------------------------------------------------- streams
_PLACEHOLDERS = None


def _placeholders():
    """(regex, every placeholder text) for the placeholders this kernel produces.

    Only the redactor's format with one of its real rule ids counts, so `[REDACTED:` + a secret + `]`
    is not mistaken for a placeholder.
    """
    global _PLACEHOLDERS
    if _PLACEHOLDERS is None:
        import re

        from jupyter_securellm.detect.known import RULE_ID

        redactor = get_redactor()
        ids = sorted({RULE_ID, *(r.id for r in redactor.scanner.rules)}, key=len, reverse=True)
        texts = tuple(redactor.placeholder.format(rule_id=i) for i in ids)
        _PLACEHOLDERS = (re.compile("|".join(map(re.escape, texts))), texts)
    return _PLACEHOLDERS


def _cut_placeholder_start(text: str) -> int:
    """Where a placeholder cut off by the end of `text` begins (len(text) if the end cuts none)."""
    _, texts = _placeholders()
    longest = max(map(len, texts))
    for start in range(max(0, len(text) - longest + 1), len(text)):
        tail = text[start:]
        if any(t.startswith(tail) for t in texts):
            return start
    return len(text)


class OutputResolver:
    """One output stream's StreamRedactor, resolved at every boundary the output can no longer cross.

    * Text may be held back while a secret could still be arriving (a key printed one character at a
      time). `resolve()` ends the current run: it releases what is held, redacting everything the engine
      recognises in it, exactly as at the end of the stream. The kernel calls it before every non-stream
      message (display, result, error, clear_output, widget) and at the end of execution, so output keeps
      the order the code produced it.
    * A placeholder we produce (`Secret.__str__`, a redacted log line, an answer from the broker) is not a
      candidate secret: it ends the run, passes whole and is never re-scanned or held. A placeholder cut by
      a batch boundary is carried to the next batch (never emitted raw, never split).
    """

    def __init__(self):
        self._sr = None
        self._carry = ""

    def _feed(self, text: str) -> str:
        if not text:
            return ""
        if self._sr is None:
            self._sr = get_redactor().stream()
        return self._sr.feed(text)

    def _end_run(self) -> str:
        if self._sr is None:
            return ""
        out = self._sr.flush()
        self._sr = None
        return out

    def feed(self, text: str) -> str:
        text, self._carry = self._carry + text, ""
        rx, texts = _placeholders()
        if texts[0][:1] not in text:  # the common case: nothing that could be a placeholder
            return self._feed(text)
        out, pos = [], 0
        for m in rx.finditer(text):
            out += (self._feed(text[pos:m.start()]), self._end_run(), m.group(0))
            pos = m.end()
        rest = text[pos:]
        cut = _cut_placeholder_start(rest)
        self._carry = rest[cut:]
        out.append(self._feed(rest[:cut]))
        return "".join(out)

    @property
    def holding(self) -> bool:
        return bool(self._carry) or (self._sr is not None and self._sr.pending > 0)

    def resolve(self) -> str:
        carry, self._carry = self._carry, ""
        return self._feed(carry) + self._end_run()


class StreamGuard:
    """Feeds one plain output stream (no ipykernel) through an OutputResolver.

    `flush()` of the stream deliberately does NOT release held-back text: a secret printed one
    character at a time with flush=True must stay held until it is complete (then redacted).
    Held text is released by `drain()` at a boundary (see OutputResolver).
    """

    def __init__(self, raw_write):
        self._raw_write = raw_write
        self._res = OutputResolver()
        self._lock = threading.Lock()

    def write(self, s):
        if not isinstance(s, str) or not s:
            return self._raw_write(s)
        with self._lock:
            out = self._res.feed(s)
            if out:
                self._raw_write(out)
        return len(s)

    def drain(self):
        with self._lock:
            out = self._res.resolve()
            if out:
                self._raw_write(out)


class BatchGuard:
    """Redacts ipykernel's OutStream per flushed batch instead of per write().

    ipykernel collects writes (print, fd-captured output of C code and child processes) and sends
    them every ~0.2 s from its IOPub thread via `_flush_buffers()`. Feeding each batch to one
    OutputResolver costs one scan per batch instead of one per write (printing 100,000 lines stays
    cheap), and a secret split across batches is still held back until it is complete.
    `drain()` (at every boundary) asks for a final flush that releases what is held back.
    """

    def __init__(self, stream):
        self.stream = stream
        self._orig = stream._flush_buffers
        self._res = OutputResolver()
        self._final = False
        self._held_only = False
        self._last_parent = {}
        self._lock = threading.Lock()

    @property
    def holding(self) -> bool:
        return self._res.holding

    def release_held(self) -> None:
        """Send only what is held back, now, not the text buffered since (the other stream is about to
        send: text held here was written before it). Only on the IOPub thread, where flushes run."""
        thread = getattr(getattr(self.stream, "pub_thread", None), "thread", None)
        if thread is None or thread is not threading.current_thread():
            return
        with self._lock:
            if not self._res.holding:
                return
            self._final = self._held_only = True
        self.stream._flush()

    def flush_buffers(self):
        with self._lock:
            held_only, self._held_only = self._held_only, False
        items = [] if held_only else list(self._orig())
        with self._lock:
            out = []
            for parent, data in items:
                if parent:
                    self._last_parent = parent
                out.append((parent, self._res.feed(data) if data else data))
            if self._final:
                self._final = False
                rest = self._res.resolve()
                if rest:
                    out.append((self._last_parent, rest))
        yield from out

    def _buffered(self) -> bool:
        buffers = getattr(self.stream, "_buffers", None)
        try:
            return buffers is None or any(b.tell() for b in list(buffers.values()))
        except Exception:  # pragma: no cover - ipykernel internals changed: assume there is something
            return True

    def _reader_blocked_in_read(self, thread, fid: int) -> bool | None:
        """Whether ipykernel's pipe reader is blocked in read(fid) (/proc/self/task/<tid>/syscall): then
        all that was written to the pipe has been taken. None where this cannot be told (not Linux x86-64
        or arm64, /proc unreadable)."""
        nr = _READ_SYSCALL.get(__import__("platform").machine())
        tid = getattr(thread, "native_id", None)
        if nr is None or tid is None:
            return None
        try:
            with open(f"/proc/self/task/{tid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            return None
        if not fields or fields[0] == "running":
            return False
        try:
            return int(fields[0]) == nr and len(fields) > 1 and int(fields[1], 16) == fid
        except ValueError:
            return None

    def _settle_fd_pipe(self, timeout: float = 1.0):
        """Wait until output written to fd 1/2 (C code, child processes) has reached our buffers.

        ipykernel reads that pipe on its own thread; without this wait, a child's output written before a
        display could still be in the pipe, or in that thread between read() and write(), when the display
        is sent. Done when the pipe is empty and the thread is blocked in read() on it again (one small
        /proc read, no sleep, in the usual case). Bounded: a child that keeps writing does not stall the
        kernel.
        """
        fid = getattr(self.stream, "_fid", None)
        thread = getattr(self.stream, "watch_fd_thread", None)
        if fid is None or thread is None or not thread.is_alive() or thread is threading.current_thread():
            return
        import array
        import fcntl
        import termios
        import time

        deadline = time.monotonic() + timeout
        while True:
            pending = array.array("i", [0])
            try:
                fcntl.ioctl(fid, termios.FIONREAD, pending)
            except OSError:
                return
            if pending[0] == 0:
                blocked = self._reader_blocked_in_read(thread, fid)
                if blocked is None:  # cannot tell: one GIL hand-off to the reader, then go on
                    time.sleep(0.001)
                    return
                if blocked:
                    return
            if time.monotonic() > deadline:
                return
            time.sleep(0.0005)

    def drain(self):
        self._settle_fd_pipe()
        with self._lock:
            if not self._res.holding and not self._buffered():
                return  # nothing held, nothing waiting: no round trip to the IOPub thread
            self._final = True
        try:
            self.stream.flush()  # runs flush_buffers on the IOPub thread and waits for it
        except Exception:  # pragma: no cover - a closed stream at shutdown
            pass


class RedactingStream:
    """Proxy for a stream whose instances cannot take attributes (a plain TextIOWrapper)."""

    def __init__(self, stream, guard: StreamGuard):
        object.__setattr__(self, "_stream", stream)
        object.__setattr__(self, "_guard", guard)

    def write(self, s):
        return self._guard.write(s)

    def writelines(self, lines):
        for line in lines:
            self._guard.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def __setattr__(self, name, value):
        setattr(self._stream, name, value)


# ---------------------------------------------------------------- logging
def _redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The shared log-record redaction (jupyter_securellm.redacting), with this kernel's redactor."""
    if getattr(record, "_securellm_redacted", False):
        return record
    if getattr(_LOG_STATE, "busy", False):  # logged by the redactor itself while redacting: never raw
        record.msg, record.args, record.exc_info, record.exc_text = (
            "[log record emitted during redaction withheld]", (), None, None)
    else:
        _LOG_STATE.busy = True
        try:
            redact_record(record, redact)
        finally:
            _LOG_STATE.busy = False
    record._securellm_redacted = True
    return record


_LOG_STATE = threading.local()


class _RedactedValue:
    """Stands in for an exception value whose str() must not show a secret."""

    def __init__(self, text):
        self._text = text

    def __str__(self):
        return self._text


# ---------------------------------------------------------------- hooks
class Hooks:
    """Installs the output hooks on one shell and remembers how to undo each of them."""

    def __init__(self, shell):
        self.shell = shell
        self._undo = []
        self.guards = []

    # -- helpers
    def _patch_attr(self, obj, name, value):
        had = name in getattr(obj, "__dict__", {})
        old = obj.__dict__[name] if had else None
        setattr(obj, name, value)

        def undo():
            if had:
                setattr(obj, name, old)
            else:
                try:
                    delattr(obj, name)
                except AttributeError:
                    pass

        self._undo.append(undo)

    def uninstall(self):
        for guard in self.guards:
            try:
                guard.drain()
            except Exception:
                pass
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:  # pragma: no cover - best effort on unload
                pass
        self.guards = []

    def drain(self, *_args):
        """Resolve held-back stream text now (a boundary: see OutputResolver)."""
        for guard in self.guards:
            try:
                guard.drain()
            except Exception:  # pragma: no cover - a closed stream must not break the message itself
                pass

    # -- installers
    def install_all(self):
        self.install_streams()
        self.install_display()
        self.install_tracebacks()
        self.install_logging()
        self.install_comms()
        self.install_session()
        self.shell.events.register("post_run_cell", self.drain)
        self._undo.append(lambda: self.shell.events.unregister("post_run_cell", self.drain))

    def install_streams(self):
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is None:
                continue
            if callable(getattr(stream, "_flush_buffers", None)) and hasattr(stream, "__dict__"):
                # ipykernel's OutStream: redact each flushed batch, which also covers output
                # captured from fd 1/2 (C extensions, child processes).
                guard = BatchGuard(stream)
                self._patch_attr(stream, "_flush_buffers", guard.flush_buffers)
            else:
                guard = StreamGuard(stream.write)
                proxy = RedactingStream(stream, guard)
                setattr(sys, name, proxy)

                def undo(name=name, stream=stream, proxy=proxy):
                    if getattr(sys, name) is proxy:
                        setattr(sys, name, stream)

                self._undo.append(undo)
            self.guards.append(guard)

    def install_display(self):
        shell = self.shell
        fmt = shell.display_formatter
        orig_format = fmt.format

        def format(obj, include=None, exclude=None):  # noqa: A001 - IPython API name
            data, md = orig_format(obj, include=include, exclude=exclude)
            return redact_mimebundle(data), md

        self._patch_attr(fmt, "format", format)

        pub = shell.display_pub
        orig_publish = pub.publish

        def publish(data, *args, **kwargs):
            return orig_publish(redact_mimebundle(data), *args, **kwargs)

        self._patch_attr(pub, "publish", publish)

    def install_tracebacks(self):
        shell = self.shell
        orig = shell._showtraceback

        def _showtraceback(etype, evalue, stb):
            stb = [redact(line) if isinstance(line, str) else line for line in (stb or [])]
            try:
                text = str(evalue)
            except Exception:
                text = ""
            return orig(etype, _RedactedValue(redact(text)), stb)

        self._patch_attr(shell, "_showtraceback", _showtraceback)

    def install_logging(self):
        old_factory = logging.getLogRecordFactory()

        def factory(*args, **kwargs):
            return _redact_record(old_factory(*args, **kwargs))

        logging.setLogRecordFactory(factory)

        def undo():
            if logging.getLogRecordFactory() is factory:
                logging.setLogRecordFactory(old_factory)

        self._undo.append(undo)

    def install_comms(self):
        # Widget state travels in comm open/msg data. Only patch if comms are in use already
        # (ipykernel imports `comm`); without a kernel there is no frontend to leak to.
        base = sys.modules.get("comm.base_comm")
        if base is None:
            return
        cls = base.BaseComm
        for meth in ("open", "send", "close"):
            orig = cls.__dict__.get(meth)
            if orig is None:
                continue

            def wrapper(self, data=None, metadata=None, buffers=None, *args, _orig=orig, **kwargs):
                return _orig(self, redact_obj(data), redact_obj(metadata), buffers, *args, **kwargs)

            wrapper.__name__ = meth
            wrapper.__doc__ = orig.__doc__
            setattr(cls, meth, wrapper)
            self._undo.append(lambda cls=cls, meth=meth, orig=orig: setattr(cls, meth, orig))

    def install_session(self):
        """Last net in ipykernel: redact every non-stream message (incl. execute_input, replies)."""
        kernel = getattr(self.shell, "kernel", None)
        session = getattr(kernel, "session", None)
        if session is None:
            return
        orig_send = session.send

        def send(stream, msg_or_type, content=None, *args, **kwargs):
            msg_type = msg_or_type.get("msg_type") if isinstance(msg_or_type, dict) else msg_or_type
            if msg_type == "stream":
                # stdout and stderr: text one holds back goes out before the other's next message
                body = msg_or_type.get("content") if isinstance(msg_or_type, dict) else content
                name = body.get("name") if isinstance(body, dict) else None
                if not getattr(_CROSSING, "on", False):
                    _CROSSING.on = True
                    try:
                        for guard in self.guards:
                            if isinstance(guard, BatchGuard) and getattr(guard.stream, "name", name) != name \
                                    and guard.holding:
                                guard.release_held()
                    finally:
                        _CROSSING.on = False
                return orig_send(stream, msg_or_type, content, *args, **kwargs)
            if msg_type not in _NO_BOUNDARY:
                # Output order: stream text held back so far goes out before this message.
                self.drain()
            if isinstance(msg_or_type, dict):
                msg_or_type = dict(msg_or_type, content=_redact_content(msg_or_type.get("content")))
            else:
                content = _redact_content(content)
            return orig_send(stream, msg_or_type, content, *args, **kwargs)

        self._patch_attr(session, "send", send)


#: read(2)'s number, to recognise ipykernel's pipe reader waiting in read() (see _settle_fd_pipe).
_READ_SYSCALL = {"x86_64": 0, "aarch64": 63}

_CROSSING = threading.local()  # set while one stream releases another's held text (no ping-pong)

#: Messages that carry no output, so held stream text need not be resolved before them.
_NO_BOUNDARY = frozenset({"status", "execute_input"})


def _redact_content(content):
    if not isinstance(content, dict):
        return redact_obj(content)
    out = {}
    for key, value in content.items():
        if key == "data" and isinstance(value, dict):
            out[key] = redact_mimebundle(value)
        else:
            out[key] = redact_obj(value)
    return out
