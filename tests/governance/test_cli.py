"""`jupyter-securellm policy eval|test` and `audit verify|report`, run as the real command."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jupyter_securellm.governance.audit import AuditLog, FileSigner

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policies"


def cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "jupyter_securellm", *map(str, args)], capture_output=True,
                          text=True, input=stdin, env=env, timeout=120)


def test_policy_test_passes_on_the_examples_and_fails_on_a_broken_test(tmp_path):
    r = cli("policy", "test", EXAMPLES)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"PASS: (\d+)/\1", r.stdout)
    (tmp_path / "p.rego").write_text('package jupyter_securellm.authz\n\ndeny contains "no" if { input.user == "x" }\n')
    (tmp_path / "p_test.rego").write_text('package jupyter_securellm.authz_test\n\n'
                                          'test_x := {"input": {"user": "x"}, "denied": false}\n')
    r = cli("policy", "test", tmp_path)
    assert r.returncode == 1 and "FAIL  jupyter_securellm.authz_test.test_x" in r.stdout
    (tmp_path / "p.rego").write_text("package jupyter_securellm.authz\n\ndeny contains \"no\" if {\n")
    r = cli("policy", "test", tmp_path)
    assert r.returncode == 2 and "p.rego:" in r.stderr


def test_policy_eval_prints_the_decision(tmp_path):
    doc = {"action": "chat", "user": "a", "groups": ["data-science"], "model": "claude", "request": {"max_tokens": 10},
           "time": {"hour": 10, "minute": 0, "weekday": 1, "date": "2026-11-30", "timezone": "UTC"}}
    f = tmp_path / "in.json"
    f.write_text(json.dumps(doc))
    r = cli("policy", "eval", "--input", f, EXAMPLES)
    assert r.returncode == 1 and r.stdout.splitlines() == ["deny", "  - model claude is not allowed for your groups"]
    doc["groups"] = ["research"]
    r = cli("policy", "eval", "--input", "-", "--format", "json", EXAMPLES, stdin=json.dumps(doc))
    assert r.returncode == 0 and json.loads(r.stdout) == {"allowed": True, "deny": [], "error": None}
    r = cli("policy", "eval", "--input", tmp_path / "missing.json", EXAMPLES)
    assert r.returncode == 2 and "missing.json" in r.stderr


def _signed_log(tmp_path):
    k = Ed25519PrivateKey.generate()
    kp = tmp_path / "k.pem"
    kp.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    pub = tmp_path / "pub.pem"
    pub.write_bytes(k.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, signer=FileSigner(str(kp)), checkpoint_every=5)
    for i, user in enumerate(["ana", "bob", "<script>alert(1)</script>"] * 4):
        log.write({"type": "call", "user": user, "model": "gpt", "action": "chat", "status": "ok", "tokens_in": 10,
                   "tokens_out": 5, "cost_usd": 0.001 * (i + 1), "price_known": True, "latency_ms": 10.0 * (i + 1),
                   "time": f"2026-11-{28 + i % 3:02d}T10:00:00.000Z"})
    log.write({"type": "decision", "decision": "deny", "error_type": "policy_denied", "user": "bob",
               "time": "2026-11-30T11:00:00.000Z"})
    log.close()
    return path, pub


def test_audit_verify_exit_codes_and_named_record(tmp_path):
    path, pub = _signed_log(tmp_path)
    r = cli("audit", "verify", "--public-key", pub, path)
    assert r.returncode == 0 and r.stdout.startswith("OK: 13 records") and "signatures verified" in r.stdout
    lines = path.read_text().splitlines(keepends=True)
    lines[6] = lines[6].replace('"tokens_in":10', '"tokens_in":11')
    path.write_text("".join(lines))
    r = cli("audit", "verify", "--format", "json", "--public-key", pub, path)
    assert r.returncode == 1
    prob = json.loads(r.stdout)["problem"]
    assert prob["line"] == 7 and prob["seq"] == 7 and "edited" in prob["reason"]
    r = cli("audit", "verify", tmp_path / "nope.jsonl")
    assert r.returncode == 2 and "no such audit log" in r.stderr


def test_audit_report_text_json_and_a_self_contained_html_page(tmp_path):
    path, _ = _signed_log(tmp_path)
    r = cli("audit", "report", "--by", "user", "--format", "json", path)
    s = json.loads(r.stdout)
    assert r.returncode == 0 and s["total"]["calls"] == 12 and s["total"]["denials"] == 1
    assert s["rows"]["ana"]["calls"] == 4 and s["rows"]["bob"]["denials"] == 1
    assert set(s["spend_per_day_per_user"]) == {"2026-11-28", "2026-11-29", "2026-11-30"}
    r = cli("audit", "report", "--by", "model", path)
    gpt = [line.split() for line in r.stdout.splitlines() if line.startswith("gpt ")]
    assert r.returncode == 0 and gpt and gpt[0][1] == "12"  # 12 calls of model gpt
    out = tmp_path / "r.html"
    r = cli("audit", "report", "--format", "html", "-o", out, path)
    page = out.read_text()
    assert r.returncode == 0 and page.count("<svg") == 3
    assert "Spend per day per user" in page and "Denials per day" in page and "Latency" in page
    assert "<script" not in page and "&lt;script&gt;" in page  # a hostile user name is escaped
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from anywhere
