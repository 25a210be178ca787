"""The audit log: one JSON line per decision and per call, hash-chained, durable, fail-closed.

- **What is written:** who, what, where, the decision and its reasons, tokens, cost, latency and
  status. Never a prompt, an answer or a secret; optional keyed HMAC-SHA256 fingerprints of prompt and
  answer allow correlation (as Vault's audit device does), with a key from Vault or a file.
- **Hash chain:** each record carries `seq` (1, 2, ...) and `prev`, the `hash` of the record before;
  `hash = sha256(prev + "\\n" + canonical JSON of the record without "hash")`. Any edit, deletion,
  insertion or reordering breaks it. Rotation (by size or day) renames the live file to
  `<path>.<first seq>`; the chain continues in the new file.
- **Signed checkpoints:** every N records or M seconds the chain head `(seq, hash)` is signed by a
  `Signer` (Vault/OpenBao transit with an ed25519 key, or a local ed25519 key file) and appended to
  `<path>.checkpoints`. Someone who can rewrite the whole log cannot forge a signature, so `verify`
  with the public key detects a rewritten history and a truncated tail.
- **Durable:** a group-commit writer thread writes every queued record, fsyncs once, then completes
  their futures; a call is acknowledged only after its record is on disk, so `kill -9` loses no record
  of an acknowledged call. `group_commit=False` fsyncs each record on its own (benchmarked).
- **Fail closed:** if a write or fsync fails (disk full, permissions), the partial bytes are cut off,
  the futures fail with `AuditUnavailable`, and the broker refuses the call with a clear error.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import json
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

GENESIS = "0" * 64
CHECKPOINT_PREFIX = "jupyter-securellm-audit-checkpoint:v1"


class AuditUnavailable(Exception):
    """The audit log cannot be written; calls must be refused (fail closed)."""


def canonical(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_hash(prev: str, body: dict) -> str:
    return hashlib.sha256((prev + "\n" + canonical(body)).encode("utf-8")).hexdigest()


def now_iso(ts: float | None = None) -> str:
    t = _dt.datetime.fromtimestamp(time.time() if ts is None else ts, _dt.timezone.utc)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def checkpoint_payload(seq: int, head: str, when: str) -> bytes:
    return f"{CHECKPOINT_PREFIX}:{seq}:{head}:{when}".encode()


# -- HMAC fingerprints ------------------------------------------------------------------------------

class Fingerprinter:
    """Keyed HMAC-SHA256 of prompts and answers: equal texts correlate, the text cannot be recovered."""

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("the audit HMAC key must be at least 16 bytes")
        self._key = key

    def __call__(self, text: str) -> str:
        return "hmac-sha256:" + hmac.new(self._key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show the key
        return "Fingerprinter(<key hidden>)"


def load_hmac_key_file(path: str) -> bytes:
    """The HMAC key from a file (stripped); refuse a file others can read."""
    p = Path(os.path.expanduser(path))
    st = p.stat()
    if st.st_mode & 0o077:
        raise ValueError(f"{p}: the audit HMAC key file must not be readable by group or others (chmod 600)")
    key = p.read_bytes().strip()
    if len(key) < 16:
        raise ValueError(f"{p}: the audit HMAC key must be at least 16 bytes")
    return key


# -- signers ------------------------------------------------------------------------------------------

class Signer:
    """Signs checkpoint payloads. `sign` returns (signature text, key id)."""

    key_id = ""

    def sign(self, payload: bytes) -> tuple[str, str]:
        raise NotImplementedError

    def public_key_pem(self) -> str:
        raise NotImplementedError


class TransitSigner(Signer):
    """Vault/OpenBao transit engine with an ed25519 key (`vault:vN:<base64>` signatures)."""

    def __init__(self, url: str = "", token: str | Callable[[], str] = "", key: str = "", mount: str = "transit",
                 namespace: str | None = None, verify: bool | str = True, timeout: float = 10.0,
                 run: Callable | None = None):
        """Either `url` and `token`, or `run(fn)`: calls fn(hvac client) with a logged-in client (the server
        passes its Vault client's, so the signing token is renewed and re-issued like every other)."""
        self.url, self.key, self.mount, self.namespace = url.rstrip("/"), key, mount.strip("/"), namespace
        self._token = token
        self._run = run
        self.verify, self.timeout = verify, timeout
        self.key_id = f"transit:{self.mount}/{key}"

    def _call(self, fn):
        if self._run is not None:
            return self._run(fn)
        import hvac

        tok = self._token() if callable(self._token) else self._token
        return fn(hvac.Client(url=self.url, token=tok, namespace=self.namespace, verify=self.verify,
                              timeout=self.timeout))

    def sign(self, payload: bytes) -> tuple[str, str]:
        r = self._call(lambda c: c.secrets.transit.sign_data(
            name=self.key, hash_input=base64.b64encode(payload).decode(), mount_point=self.mount))
        return r["data"]["signature"], self.key_id

    def public_keys(self) -> dict[str, str]:
        """{version: base64 ed25519 public key} as transit exports them."""
        r = self._call(lambda c: c.secrets.transit.read_key(name=self.key, mount_point=self.mount))
        return {str(v): k["public_key"] for v, k in r["data"]["keys"].items()}

    def public_key_pem(self) -> str:
        keys = self.public_keys()
        return ed25519_pem_from_raw(base64.b64decode(keys[max(keys, key=int)]))


class FileSigner(Signer):
    """A local ed25519 private key (PEM) for deployments without Vault transit."""

    def __init__(self, path: str):
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        self._key = load_pem_private_key(Path(path).read_bytes(), password=None)
        self.key_id = f"file:{Path(path).name}"

    def sign(self, payload: bytes) -> tuple[str, str]:
        return "ed25519:" + base64.b64encode(self._key.sign(payload)).decode(), self.key_id

    def public_key_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def ed25519_pem_from_raw(raw: bytes) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_keys(text: str) -> list:
    """Public keys from PEM blocks or bare base64 ed25519 keys (one per line, as transit exports)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    keys = []
    for block in text.split("-----END PUBLIC KEY-----"):
        if "-----BEGIN PUBLIC KEY-----" in block:
            keys.append(load_pem_public_key((block.strip() + "\n-----END PUBLIC KEY-----\n").encode()))
    if not keys:
        for line in text.split():
            keys.append(Ed25519PublicKey.from_public_bytes(base64.b64decode(line)))
    return keys


def _verify_signature(keys: list, payload: bytes, signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        raw = base64.b64decode(signature.rsplit(":", 1)[-1])
    except (ValueError, TypeError):
        return False
    for k in keys:
        try:
            k.verify(raw, payload)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


# -- the writer --------------------------------------------------------------------------------------

def _last_complete_line(path: Path) -> tuple[bytes | None, int]:
    """(last complete line, offset just after it). A trailing partial line is reported by the offset."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        end = size
        buf = b""
        pos = size
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
            nl = buf.rfind(b"\n")
            if nl == -1:
                continue
            good_end = pos + nl + 1
            prev_nl = buf.rfind(b"\n", 0, nl)
            while prev_nl == -1 and pos > 0:
                step = min(65536, pos)
                pos -= step
                f.seek(pos)
                extra = f.read(step)
                nl += len(extra)
                buf = extra + buf
                prev_nl = buf.rfind(b"\n", 0, nl)
            return buf[prev_nl + 1:nl], good_end
        return None, 0 if end else 0


def rotated_files(path: Path) -> list[Path]:
    """`<path>.<first seq>` files, oldest first."""
    out = []
    for p in path.parent.glob(path.name + ".*"):
        suffix = p.name[len(path.name) + 1:]
        if suffix.isdigit():
            out.append((int(suffix), p))
    return [p for _, p in sorted(out)]


class AuditLog:
    """Append-only hash-chained JSONL with group commit. Thread-safe; `submit` never blocks on disk."""

    def __init__(self, path: str | os.PathLike, *, fingerprinter: Fingerprinter | None = None,
                 rotate_bytes: int = 100 * 1024 * 1024, rotate_daily: bool = True, signer: Signer | None = None,
                 checkpoint_every: int = 1000, checkpoint_seconds: float = 300.0, group_commit: bool = True,
                 clock: Callable[[], float] = time.time, log=None, on_error: Callable[[str], None] | None = None):
        self.path = Path(os.path.expanduser(str(path)))
        self.fingerprint = fingerprinter
        self.rotate_bytes = rotate_bytes
        self.rotate_daily = rotate_daily
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.group_commit = group_commit
        self.clock = clock
        self.log = log
        self.on_error = on_error
        self.checkpoint_path = Path(str(self.path) + ".checkpoints")
        self.error: str | None = None
        self._cond = threading.Condition()
        self._queue: list[tuple[dict, Future]] = []
        self._closed = False
        self._fd: int | None = None
        self._size = 0
        self._day = ""
        self._seq = 0
        self._head = GENESIS
        self._since_cp = 0
        self._last_cp_time = self.clock()
        self._cp_lock = threading.Lock()
        self._cp_thread: threading.Thread | None = None
        self.records_written = 0
        try:
            self._open()
        except OSError as exc:
            self._fail(exc)
        self._thread = threading.Thread(target=self._run, name="securellm-audit", daemon=True)
        self._thread.start()

    # -- opening, resuming, rotating ----------------------------------------------------------
    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._fd is None:
            self._resume()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._size = os.fstat(self._fd).st_size
            _fsync_dir(self.path.parent)

    def _resume(self) -> None:
        """Continue the chain from the last durable record (the live file or the newest rotated one)."""
        cands = ([self.path] if self.path.exists() and self.path.stat().st_size else []) or rotated_files(self.path)[-1:]
        if not cands:
            return
        src = cands[-1]
        line, good_end = _last_complete_line(src)
        size = src.stat().st_size
        if good_end < size and src == self.path:
            # bytes of a batch that never completed its fsync: no call was acknowledged for them
            with open(src, "r+b") as f:
                f.truncate(good_end)
                os.fsync(f.fileno())
            if self.log:
                self.log.warning("SecureLLM: audit log %s ended with %d bytes of an unfinished record; cut off",
                                 src, size - good_end)
        if line:
            rec = json.loads(line)
            self._seq, self._head = int(rec["seq"]), rec["hash"]
            self._day = str(rec.get("time", ""))[:10]

    def _maybe_rotate(self, today: str) -> None:
        if self._size == 0:
            self._day = today
            return
        if self._size < self.rotate_bytes and not (self.rotate_daily and self._day and today != self._day):
            return
        first_seq = self._first_seq_of_live()
        os.close(self._fd)
        self._fd = None
        os.rename(self.path, Path(f"{self.path}.{first_seq:012d}"))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = 0
        self._day = today
        _fsync_dir(self.path.parent)

    def _first_seq_of_live(self) -> int:
        with open(self.path, "rb") as f:
            return int(json.loads(f.readline())["seq"])

    # -- API ------------------------------------------------------------------------------------
    def submit(self, record: dict) -> Future:
        """Queue a record; the future completes (with its seq) once it is on disk, or fails."""
        fut: Future = Future()
        with self._cond:
            if self._closed:
                fut.set_exception(AuditUnavailable("the audit log is closed"))
                return fut
            self._queue.append((dict(record), fut))
            self._cond.notify()
        return fut

    def write(self, record: dict, timeout: float | None = 30.0) -> int:
        return self.submit(record).result(timeout)

    async def awrite(self, record: dict) -> int:
        import asyncio

        return await asyncio.wrap_future(self.submit(record))

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def head(self) -> str:
        return self._head

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
        if self.signer and self._since_cp and self.error is None:
            self._checkpoint(self._seq, self._head)
        if self._cp_thread is not None:
            self._cp_thread.join(timeout)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- the writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait(timeout=1.0)
                    if not self._queue:
                        self._maybe_time_checkpoint()
                if not self._queue and self._closed:
                    return
                if self.group_commit:
                    batch, self._queue = self._queue, []
                else:
                    batch, self._queue = self._queue[:1], self._queue[1:]
            self._commit(batch)

    def _commit(self, batch: list[tuple[dict, Future]]) -> None:
        seq, head, size = self._seq, self._head, self._size
        try:
            self._open()
            now = self.clock()
            stamp = now_iso(now)
            self._maybe_rotate(stamp[:10])
            size = self._size
            lines = []
            for rec, _ in batch:
                rec.setdefault("time", stamp)
                rec.pop("hash", None)
                seq += 1
                rec["seq"], rec["prev"] = seq, head
                head = chain_hash(head, rec)
                rec["hash"] = head
                lines.append(canonical(rec))
            data = ("\n".join(lines) + "\n").encode("utf-8")
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            _datasync(self._fd)
        except (OSError, ValueError) as exc:
            self._rollback(size)
            err = self._fail(exc)
            for _, fut in batch:
                fut.set_exception(AuditUnavailable(err))
            return
        self._seq, self._head, self._size = seq, head, size + len(data)
        self.records_written += len(batch)
        if self.error is not None:
            if self.log:
                self.log.warning("SecureLLM: audit log %s is writable again", self.path)
            self.error = None
        first = seq - len(batch) + 1
        for n, (_, fut) in enumerate(batch):
            fut.set_result(first + n)
        self._since_cp += len(batch)
        if self.signer and (self._since_cp >= self.checkpoint_every):
            self._checkpoint_async(seq, head)
        else:
            self._maybe_time_checkpoint()

    def _rollback(self, size: int) -> None:
        """Cut off the bytes of a failed batch, so the file ends at the last durable record."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, size)
            os.fsync(self._fd)
        except OSError:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None  # reopened (and resumed from the file) by the next batch

    def _fail(self, exc: BaseException) -> str:
        reason = getattr(exc, "strerror", None) or str(exc)
        msg = (f"The audit log {self.path} cannot be written ({reason}); calls are refused until an admin "
               "fixes it (free disk space or fix permissions).")
        if msg != self.error:
            if self.log:
                self.log.error("SecureLLM: %s", msg)
            if self.on_error:
                try:
                    self.on_error(msg)
                except Exception:  # noqa: BLE001 - a metrics hook must not break the writer
                    pass
        self.error = msg
        return msg

    # -- checkpoints ------------------------------------------------------------------------------
    def _maybe_time_checkpoint(self) -> None:
        if self.signer and self._since_cp and self.clock() - self._last_cp_time >= self.checkpoint_seconds:
            self._checkpoint_async(self._seq, self._head)

    def _checkpoint_async(self, seq: int, head: str) -> None:
        self._since_cp = 0
        self._last_cp_time = self.clock()
        if self._cp_thread is not None and self._cp_thread.is_alive():
            self._cp_pending = (seq, head)  # the running one will pick the newest head up
            return
        self._cp_pending = None
        self._cp_thread = threading.Thread(target=self._checkpoint_loop, args=(seq, head),
                                           name="securellm-audit-checkpoint", daemon=True)
        self._cp_thread.start()

    def _checkpoint_loop(self, seq: int, head: str) -> None:
        while True:
            self._checkpoint(seq, head)
            pending = getattr(self, "_cp_pending", None)
            if not pending:
                return
            self._cp_pending = None
            seq, head = pending

    def _checkpoint(self, seq: int, head: str) -> None:
        """Sign the head and append it to `<path>.checkpoints` (durably). Failures are logged, not fatal."""
        with self._cp_lock:
            when = now_iso(self.clock())
            try:
                sig, key_id = self.signer.sign(checkpoint_payload(seq, head, when))
                line = canonical({"seq": seq, "hash": head, "time": when, "key": key_id, "signature": sig}) + "\n"
                fd = os.open(self.checkpoint_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._since_cp = 0 if self._seq == seq else self._since_cp
            except Exception as exc:  # noqa: BLE001 - Vault down: the chain still protects, retry later
                if self.log:
                    self.log.error("SecureLLM: audit checkpoint at seq %d could not be signed: %s", seq,
                                   type(exc).__name__)


def _datasync(fd: int) -> None:
    """fdatasync where it exists: for an append it also flushes the new size, which is all we need."""
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- verification -------------------------------------------------------------------------------------

@dataclass
class Problem:
    file: str
    line: int
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f" (seq {self.seq})" if self.seq is not None else "")
        return f"{where}: {self.reason}"


@dataclass
class VerifyReport:
    files: list[str] = field(default_factory=list)
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None
    problem: Problem | None = None
    checkpoints: int = 0
    checkpoints_verified: int = 0
    signatures_checked: bool = False
    unsigned_tail: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict:
        return {"ok": self.ok, "files": self.files, "records": self.records, "first_seq": self.first_seq,
                "last_seq": self.last_seq, "head": self.head,
                "problem": None if self.problem is None else {
                    "file": self.problem.file, "line": self.problem.line, "seq": self.problem.seq,
                    "reason": self.problem.reason},
                "checkpoints": self.checkpoints, "checkpoints_verified": self.checkpoints_verified,
                "signatures_checked": self.signatures_checked, "unsigned_tail": self.unsigned_tail,
                "notes": self.notes}


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The live file(s) plus their rotated siblings, ordered by first sequence number."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            raise FileNotFoundError(f"{p} is a directory; name the audit log file")
        for f in rotated_files(p) + [p]:
            if f not in files and (f.exists() or f == p):
                files.append(f)

    def first_seq(f: Path) -> int:
        try:
            with open(f, "rb") as fh:
                return int(json.loads(fh.readline())["seq"])
        except (ValueError, KeyError, TypeError, OSError):
            return 1 << 62
    for f in files:
        if not f.exists():
            raise FileNotFoundError(f"{f}: no such audit log")
    return sorted(files, key=first_seq)


def iter_records(paths: Iterable[str | os.PathLike]):
    """(file, line number, record) for every well-formed line (reports use it; verify is stricter)."""
    for f in expand_paths(paths):
        with open(f, "rb") as fh:
            for n, raw in enumerate(fh, 1):
                try:
                    yield str(f), n, json.loads(raw)
                except ValueError:
                    continue


def verify(paths: Iterable[str | os.PathLike], *, public_keys: list | None = None,
           checkpoints: str | os.PathLike | None = None) -> VerifyReport:
    """Check the chain across files and the signed checkpoints; the report names the first bad record.

    Raises OSError for unreadable input (the CLI exits 2).
    """
    files = expand_paths(paths)
    rep = VerifyReport(files=[str(f) for f in files])
    hashes: dict[int, str] = {}
    expected_seq, prev = None, None
    last_time = None
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        tail_partial = lines[-1] != b""
        if not tail_partial:
            lines = lines[:-1]
        for n, raw in enumerate(lines, 1):
            if n == len(lines) and tail_partial:
                rep.problem = Problem(str(f), n, expected_seq, "the last line is incomplete: the log was "
                                                               "truncated mid-record")
                return rep
            try:
                rec = json.loads(raw)
                seq, rprev, rhash = rec["seq"], rec["prev"], rec["hash"]
            except (ValueError, KeyError, TypeError):
                rep.problem = Problem(str(f), n, expected_seq, "not a JSON audit record with seq, prev and hash "
                                                               "(edited or corrupted)")
                return rep
            body = {k: v for k, v in rec.items() if k != "hash"}
            if chain_hash(rprev, body) != rhash:
                rep.problem = Problem(str(f), n, seq, "the record does not match its hash: it was edited")
                return rep
            if expected_seq is None:
                if seq != 1:
                    rep.notes.append(f"the log starts at seq {seq}: earlier records are not among the files given")
            elif seq != expected_seq:
                what = ("a record is missing before it (deleted)" if seq > expected_seq
                        else "it repeats or goes back (reordered or inserted)")
                rep.problem = Problem(str(f), n, seq, f"expected seq {expected_seq}, found {seq}: {what}")
                return rep
            elif rprev != prev:
                rep.problem = Problem(str(f), n, seq, "its prev does not match the hash of the record before "
                                                      "(inserted, deleted or reordered)")
                return rep
            expected_seq, prev = seq + 1, rhash
            hashes[seq] = rhash
            rep.records += 1
            rep.first_seq = rep.first_seq if rep.first_seq is not None else seq
            rep.last_seq, rep.head = seq, rhash
            last_time = rec.get("time", last_time)
    # checkpoints
    cp_path = Path(checkpoints) if checkpoints else (Path(str(files[-1]) + ".checkpoints") if files else None)
    if cp_path is not None and cp_path.exists():
        last_cp = 0
        with open(cp_path, "rb") as fh:
            for n, raw in enumerate(fh, 1):
                try:
                    cp = json.loads(raw)
                    cseq, chash, ctime, sig = int(cp["seq"]), cp["hash"], cp["time"], cp["signature"]
                except (ValueError, KeyError, TypeError):
                    rep.problem = Problem(str(cp_path), n, None, "not a checkpoint line (edited or corrupted)")
                    return rep
                rep.checkpoints += 1
                if public_keys:
                    rep.signatures_checked = True
                    if not _verify_signature(public_keys, checkpoint_payload(cseq, chash, ctime), sig):
                        rep.problem = Problem(str(cp_path), n, cseq, "the checkpoint signature does not verify with "
                                                                     "the public key (forged or edited)")
                        return rep
                if rep.last_seq is not None and cseq > rep.last_seq:
                    rep.problem = Problem(str(files[-1]), -1, cseq, f"a signed checkpoint covers seq {cseq} but the "
                                                                   f"log ends at seq {rep.last_seq}: the tail was "
                                                                   "truncated")
                    return rep
                if cseq in hashes and hashes[cseq] != chash:
                    rep.problem = Problem(str(cp_path), n, cseq, "the record at this seq differs from the signed "
                                                                 "checkpoint: history was rewritten")
                    return rep
                if cseq in hashes:
                    rep.checkpoints_verified += 1
                last_cp = max(last_cp, cseq)
        if rep.last_seq is not None:
            rep.unsigned_tail = rep.last_seq - last_cp
    elif rep.records:
        rep.notes.append("no checkpoint file: a rewrite of the whole log or a cut tail cannot be detected")
        rep.unsigned_tail = rep.records
    if rep.checkpoints and not public_keys:
        rep.notes.append("checkpoint signatures were not checked (pass --public-key)")
    if rep.unsigned_tail:
        rep.notes.append(f"{rep.unsigned_tail} record(s) after the last signed checkpoint: a cut there "
                         "would not be detectable")
    return rep
