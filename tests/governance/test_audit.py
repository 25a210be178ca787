"""The audit log: tampering (edit, delete, reorder, truncate) is named by `verify`; signed checkpoints
from OpenBao's transit engine (ed25519) verify against the public key; kill -9 under load loses no
acknowledged record; a full disk refuses writes with a clear error; nothing secret is written."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jupyter_securellm.governance.audit import (AuditLog, AuditUnavailable, FileSigner, Fingerprinter, TransitSigner,
                                                load_hmac_key_file, load_public_keys, verify)

ROOT = Path(__file__).resolve().parents[2]


def _key(tmp_path) -> FileSigner:
    k = Ed25519PrivateKey.generate()
    p = tmp_path / "signing.pem"
    p.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return FileSigner(str(p))


def _log(tmp_path, n=10, **kw) -> Path:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, **kw)
    for i in range(n):
        log.write({"type": "call", "user": f"u{i % 3}", "action": "chat", "tokens_in": i})
    log.close()
    return path


def _lines(p: Path) -> list[str]:
    return p.read_text().splitlines(keepends=True)


def test_an_intact_log_verifies(tmp_path):
    signer = _key(tmp_path)
    path = _log(tmp_path, 25, signer=signer, checkpoint_every=5)
    rep = verify([path], public_keys=load_public_keys(signer.public_key_pem()))
    assert rep.ok and rep.records == 25 and rep.first_seq == 1 and rep.last_seq == 25
    assert rep.checkpoints >= 1 and rep.checkpoints_verified == rep.checkpoints and rep.signatures_checked
    assert rep.unsigned_tail == 0  # close() signs the head


def test_an_edited_line_is_named(tmp_path):
    path = _log(tmp_path)
    lines = _lines(path)
    lines[3] = lines[3].replace('"tokens_in":3', '"tokens_in":999')
    path.write_text("".join(lines))
    rep = verify([path])
    assert not rep.ok and rep.problem.line == 4 and rep.problem.seq == 4 and "edited" in rep.problem.reason


def test_a_deleted_line_is_named(tmp_path):
    path = _log(tmp_path)
    lines = _lines(path)
    del lines[5]
    path.write_text("".join(lines))
    rep = verify([path])
    assert not rep.ok and rep.problem.line == 6 and rep.problem.seq == 7
    assert "expected seq 6, found 7" in rep.problem.reason and "deleted" in rep.problem.reason


def test_two_reordered_lines_are_named(tmp_path):
    path = _log(tmp_path)
    lines = _lines(path)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_text("".join(lines))
    rep = verify([path])
    assert not rep.ok and rep.problem.line == 3 and rep.problem.seq == 4


def test_a_truncated_last_record_is_reported(tmp_path):
    signer = _key(tmp_path)
    path = _log(tmp_path, 10, signer=signer, checkpoint_every=1000)  # close() signs seq 10
    keys = load_public_keys(signer.public_key_pem())
    whole = path.read_bytes()
    path.write_bytes(whole[:-20])  # cut mid-record
    rep = verify([path], public_keys=keys)
    assert not rep.ok and rep.problem.line == 10 and "truncated mid-record" in rep.problem.reason
    path.write_bytes(b"".join(whole.splitlines(keepends=True)[:-1]))  # the whole last record removed
    rep = verify([path], public_keys=keys)
    assert not rep.ok and rep.problem.seq == 10 and "log ends at seq 9" in rep.problem.reason


def test_a_rewritten_history_fails_the_signed_checkpoint(tmp_path):
    signer = _key(tmp_path)
    path = _log(tmp_path, 10, signer=signer, checkpoint_every=1000)
    cps = Path(str(path) + ".checkpoints").read_text()
    # the attacker rewrites the whole log with a consistent new chain, but cannot sign its head
    os.remove(path)
    forged = AuditLog(path)
    for i in range(10):
        forged.write({"type": "call", "user": "someone-else", "action": "chat"})
    forged.close()
    Path(str(path) + ".checkpoints").write_text(cps)
    rep = verify([path], public_keys=load_public_keys(signer.public_key_pem()))
    assert not rep.ok and "history was rewritten" in rep.problem.reason
    # and a forged checkpoint signature does not verify
    other = _key(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path)
    rep = verify([path], public_keys=load_public_keys(other.public_key_pem()))
    assert not rep.ok and "signature does not verify" in rep.problem.reason


def test_rotation_keeps_the_chain_across_files(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, rotate_bytes=600)
    for i in range(30):
        log.write({"type": "call", "user": "u", "n": i})
    log.close()
    rotated = sorted(tmp_path.glob("audit.jsonl.0*"))
    assert len(rotated) >= 3
    rep = verify([path])
    assert rep.ok and rep.records == 30 and len(rep.files) == len(rotated) + 1
    # a deleted middle file breaks the chain at the first record after it
    rotated[1].unlink()
    rep = verify([path])
    assert not rep.ok and "deleted" in rep.problem.reason


def test_a_restarted_writer_continues_the_chain_and_cuts_a_partial_tail(tmp_path):
    path = _log(tmp_path, 5)
    with open(path, "ab") as f:
        f.write(b'{"type":"call","seq":6,"pre')  # a batch that never completed its fsync
    log = AuditLog(path)
    assert log.seq == 5
    log.write({"type": "call", "user": "after-restart"})
    log.close()
    rep = verify([path])
    assert rep.ok and rep.records == 6


def test_checkpoints_signed_by_openbao_transit_verify_with_its_public_key(tmp_path, openbao):
    c = openbao.client()
    if "transit/" not in c.sys.list_mounted_secrets_engines()["data"]:
        c.sys.enable_secrets_engine("transit")
    c.secrets.transit.create_key(name="securellm-audit", key_type="ed25519")
    signer = TransitSigner(openbao.url, openbao.root_token, "securellm-audit")
    path = _log(tmp_path, 12, signer=signer, checkpoint_every=4)
    cps = [json.loads(x) for x in Path(str(path) + ".checkpoints").read_text().splitlines()]
    assert cps and all(cp["signature"].startswith("vault:v1:") for cp in cps)
    pem = signer.public_key_pem()
    rep = verify([path], public_keys=load_public_keys(pem))
    assert rep.ok and rep.checkpoints_verified == len(cps) and rep.signatures_checked
    # transit's own export format (bare base64 ed25519 keys) is accepted too
    bare = "\n".join(signer.public_keys().values())
    assert verify([path], public_keys=load_public_keys(bare)).ok
    lines = _lines(path)
    lines[0] = lines[0].replace('"u0"', '"u9"')
    path.write_text("".join(lines))
    assert verify([path], public_keys=load_public_keys(pem)).problem.line == 1


def test_no_prompt_answer_or_key_and_hmac_fingerprints(tmp_path):
    keyfile = tmp_path / "hmac.key"
    keyfile.write_bytes(os.urandom(32).hex().encode())
    keyfile.chmod(0o600)
    fp = Fingerprinter(load_hmac_key_file(str(keyfile)))
    prompt, answer = "summarise the quarterly numbers", "they went up"
    path = tmp_path / "a.jsonl"
    log = AuditLog(path, fingerprinter=fp)
    log.write({"type": "call", "prompt_hmac": fp(prompt), "answer_hmac": fp(answer)})
    log.close()
    text = path.read_text()
    assert prompt not in text and answer not in text and keyfile.read_text() not in text
    assert json.loads(text)["prompt_hmac"] == fp(prompt) != fp(answer)
    assert "key hidden" in repr(fp)
    keyfile.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        load_hmac_key_file(str(keyfile))


KILL_WRITER = r"""
import sys
from jupyter_securellm.governance.audit import AuditLog
log = AuditLog(sys.argv[1])
import os, threading
lock = threading.Lock()
def worker(w):
    i = 0
    while True:
        seq = log.write({"type": "call", "user": f"w{w}", "n": i})
        with lock:  # acknowledged only after the record is durable; one small write() is atomic on a pipe
            os.write(1, f"{seq}\n".encode())
        i += 1
for w in range(8):
    threading.Thread(target=worker, args=(w,), daemon=True).start()
threading.Event().wait()
"""


def test_kill_9_under_load_loses_no_acknowledged_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", KILL_WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    acked = []
    deadline = time.monotonic() + 60
    while len(acked) < 2000 and time.monotonic() < deadline:
        acked.append(int(proc.stdout.readline()))
    time.sleep(0.05)  # let the writers keep going: the kill lands mid-batch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked += [int(x) for x in proc.stdout.read().split()]
    assert len(acked) >= 2000
    on_disk = {json.loads(line)["seq"] for line in path.read_text().splitlines() if line.endswith("}")}
    assert set(acked) <= on_disk
    # the file may end mid-batch; the next writer cuts that off and the chain verifies
    AuditLog(path).close()
    rep = verify([path])
    assert rep.ok and rep.last_seq >= max(acked)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (a real ENOSPC) when we may mount; else None (the test limits the file size)."""
    d = tmp_path / "tiny"
    d.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)],
                                            capture_output=True).returncode == 0:
        yield d, True
        subprocess.run(["umount", str(d)], capture_output=True)
    else:
        yield d, False


FULL_WRITER = r"""
import json, resource, signal, sys
from jupyter_securellm.governance.audit import AuditLog, AuditUnavailable
if sys.argv[2] == "rlimit":  # no tmpfs: the kernel refuses writes past the limit (EFBIG)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
log = AuditLog(sys.argv[1])
ok = failed = 0
msg = ""
for i in range(2000):
    try:
        log.write({"type": "call", "user": "u", "pad": "x" * 200, "n": i})
        ok += 1
    except AuditUnavailable as exc:
        failed += 1
        msg = str(exc)
print(json.dumps({"ok": ok, "failed": failed, "message": msg, "error": log.error}))
"""


def test_a_full_disk_refuses_writes_with_a_clear_error_and_keeps_the_chain(tiny_disk):
    d, is_tmpfs = tiny_disk
    path = d / "audit.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", FULL_WRITER, str(path), "tmpfs" if is_tmpfs else "rlimit"],
                         capture_output=True, text=True, env=env, timeout=120)
    res = json.loads(out.stdout)
    assert res["ok"] > 10 and res["failed"] > 0
    assert "cannot be written" in res["message"] and "calls are refused" in res["message"]
    assert ("No space left" in res["message"]) if is_tmpfs else ("too large" in res["message"])
    rep = verify([path])  # the failed batches were cut off: what is on disk is a valid chain
    assert rep.ok and rep.records == res["ok"]


def test_write_fails_fast_when_the_directory_is_unusable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    log = AuditLog(blocker / "audit.jsonl")  # parent is a file: cannot be created
    with pytest.raises(AuditUnavailable, match="cannot be written"):
        log.write({"type": "call"})
    assert log.error
    log.close()
