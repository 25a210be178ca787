"""`jupyter-securellm scan|scrub` as users and CI run it: formats, exit codes, directories, bad input.

Runs the real command (`python -m jupyter_securellm`) in a subprocess. Trust tier 1.
"""
import base64
import json
import os
import stat

import jsonschema
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


@pytest.fixture
def leaky(kit, tmp_path):
    """A notebook with a key in a source and one in an output; returns (path, [keys])."""
    k1, k2 = kit.secret("openai-api-key", 11), kit.secret("github-token", 11)
    nb = new_notebook()
    nb.cells = [new_code_cell(f'key = "{k1}"\n', outputs=[new_output("stream", text=f"token {k2}\n")])]
    p = tmp_path / "leaky.ipynb"
    p.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return p, [k1, k2]


def _no_secret(proc, keys):
    blob = proc.stdout + proc.stderr
    for k in keys:
        assert k.encode() not in blob


def test_scan_text_json_exit_codes(kit, leaky, tmp_path):
    path, keys = leaky
    proc = kit.run_cli("scan", path)
    assert proc.returncode == EXIT_FINDINGS
    out = proc.stdout.decode()
    assert f"{path}:" in out and "openai-api-key in cells[0].source" in out and "github-token" in out
    _no_secret(proc, keys)

    proc = kit.run_cli("scan", "--format", "json", path)
    assert proc.returncode == EXIT_FINDINGS
    data = json.loads(proc.stdout)
    assert list(data) == ["findings"]
    for f in data["findings"]:
        assert list(f) == ["path", "line", "column", "end_line", "end_column", "rule_id", "fingerprint", "cell", "field"]
    lines = path.read_text().split("\n")
    for f in data["findings"]:
        assert json.loads('"' + lines[f["line"] - 1][f["column"] - 1 : f["end_column"] - 1] + '"') in keys
    _no_secret(proc, keys)

    clean = tmp_path / "clean.py"
    clean.write_text("print('hello')\n")
    proc = kit.run_cli("scan", "--format", "json", clean)
    assert proc.returncode == EXIT_CLEAN and json.loads(proc.stdout) == {"findings": []}


# The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json) that our output uses, with their
# required properties and types, plus what GitHub code scanning needs (ruleId, a physical location
# with a relative URI and startLine, partialFingerprints as strings).
SARIF_SUBSET = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string", "format": "uri"},
        "runs": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/run"}},
    },
    "definitions": {
        "message": {"type": "object", "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
                    "properties": {"text": {"type": "string"}}},
        "run": {
            "type": "object",
            "required": ["tool", "results"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                   "informationUri": {"type": "string", "format": "uri"},
                                   "rules": {"type": "array", "items": {"$ref": "#/definitions/rule"}}}}}},
                "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                "originalUriBaseIds": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {"uri": {"type": "string", "pattern": "/$"}}}},
                "results": {"type": "array", "items": {"$ref": "#/definitions/result"}},
            },
        },
        "rule": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"}, "shortDescription": {"$ref": "#/definitions/message"},
            "fullDescription": {"$ref": "#/definitions/message"},
            "defaultConfiguration": {"type": "object", "properties": {"level": {"enum": ["none", "note", "warning", "error"]}}},
            "properties": {"type": "object"}}},
        "result": {
            "type": "object",
            "required": ["message", "ruleId", "locations"],
            "properties": {
                "ruleId": {"type": "string"}, "ruleIndex": {"type": "integer", "minimum": 0},
                "level": {"enum": ["none", "note", "warning", "error"]},
                "message": {"$ref": "#/definitions/message"},
                "locations": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["physicalLocation"], "properties": {"physicalLocation": {
                        "type": "object", "required": ["artifactLocation", "region"], "properties": {
                            "artifactLocation": {"type": "object", "required": ["uri"], "properties": {
                                "uri": {"type": "string", "not": {"pattern": "^(/|file:)"}},
                                "uriBaseId": {"type": "string"}}},
                            "region": {"type": "object", "required": ["startLine"], "properties": {
                                "startLine": {"type": "integer", "minimum": 1},
                                "startColumn": {"type": "integer", "minimum": 1},
                                "endLine": {"type": "integer", "minimum": 1},
                                "endColumn": {"type": "integer", "minimum": 1}}}}}}}},
                "partialFingerprints": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
            },
        },
    },
}


def test_scan_sarif_is_valid_for_code_scanning(kit, leaky):
    path, keys = leaky
    proc = kit.run_cli("scan", "--format", "sarif", path.name, cwd=path.parent)
    assert proc.returncode == EXIT_FINDINGS
    log = json.loads(proc.stdout)
    jsonschema.validate(log, SARIF_SUBSET)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "jupyter-securellm"
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert sorted(r["ruleId"] for r in run["results"]) == sorted(["openai-api-key", "github-token"])
    for r in run["results"]:
        assert ids[r["ruleIndex"]] == r["ruleId"]
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "leaky.ipynb"
        assert loc["region"]["startLine"] > 1
    _no_secret(proc, keys)


def test_stdin_text_and_notebook(kit, leaky):
    path, keys = leaky
    key = kit.secret("anthropic-api-key", 12)
    proc = kit.run_cli("scan", "-", input=f"log line\nkey={key}\n".encode())
    assert proc.returncode == EXIT_FINDINGS and b"-:2:5: anthropic-api-key" in proc.stdout
    proc = kit.run_cli("scan", "--format", "json", "--stdin-name", "x.ipynb", "-", input=path.read_bytes())
    data = json.loads(proc.stdout)
    assert {f["cell"] for f in data["findings"]} == {0} and {f["path"] for f in data["findings"]} == {"x.ipynb"}
    proc = kit.run_cli("scrub", "-", input=path.read_bytes())
    assert proc.returncode == EXIT_CLEAN
    _no_secret(proc, keys)
    assert b"[REDACTED:openai-api-key]" in proc.stdout


def test_base64_encoded_key_in_a_log(kit, tmp_path):
    key = kit.secret("openai-api-key", 13)
    log = tmp_path / "build.log"
    log.write_text("step 1\nenv: " + base64.b64encode(f"OPENAI_API_KEY={key}\n".encode()).decode() + "\n")
    proc = kit.run_cli("scan", "--format", "json", log)
    assert proc.returncode == EXIT_FINDINGS
    assert [(f["line"], f["rule_id"]) for f in json.loads(proc.stdout)["findings"]] == [(2, "openai-api-key")]


def test_directory_walk_honours_gitignore(kit, tmp_path):
    key = kit.secret("github-token", 14)
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "build").mkdir()
    (root / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    (root / "sub" / ".gitignore").write_text("secret.env\n")
    for rel in ["a.py", "keep.log", "skip.log", "build/x.py", "sub/secret.env", "sub/deep/b.md", ".git/config"]:
        (root / rel).write_text(f"t = '{key}'\n")
    (root / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0" + key.encode())
    proc = kit.run_cli("scan", "--format", "json", "sub", ".", cwd=root)
    found = sorted({f["path"] for f in json.loads(proc.stdout)["findings"]})
    assert found == sorted(["./a.py", "./keep.log", "./sub/deep/b.md", "sub/deep/b.md"])
    proc = kit.run_cli("scan", "--format", "json", "--no-gitignore", ".", cwd=root)
    found = {f["path"] for f in json.loads(proc.stdout)["findings"]}
    assert "./build/x.py" in found and "./sub/secret.env" in found and "./.git/config" not in found
    # a file named explicitly is scanned even when ignored
    proc = kit.run_cli("scan", "skip.log", cwd=root)
    assert proc.returncode == EXIT_FINDINGS


def test_scrub_in_place_verify_dry_run(kit, leaky):
    path, keys = leaky
    before = path.read_bytes()
    proc = kit.run_cli("scrub", "--verify", path)
    assert proc.returncode == EXIT_FINDINGS and path.read_bytes() == before and b"would scrub" in proc.stderr
    proc = kit.run_cli("scrub", "--dry-run", path)
    assert proc.returncode == EXIT_CLEAN and path.read_bytes() == before
    mode = stat.S_IMODE(os.stat(path).st_mode)
    proc = kit.run_cli("scrub", path)
    assert proc.returncode == EXIT_CLEAN, proc.stderr
    after = path.read_text()
    assert all(k not in after for k in keys) and stat.S_IMODE(os.stat(path).st_mode) == mode
    _no_secret(proc, keys)
    proc = kit.run_cli("scrub", "--verify", path)
    assert proc.returncode == EXIT_CLEAN
    mtime = os.stat(path).st_mtime_ns
    assert kit.run_cli("scrub", path).returncode == EXIT_CLEAN and os.stat(path).st_mtime_ns == mtime


def test_textconv_prints_scrubbed_view(kit, leaky):
    path, keys = leaky
    before = path.read_bytes()
    proc = kit.run_cli("scrub", "--textconv", path)
    assert proc.returncode == EXIT_CLEAN and b"[REDACTED:github-token]" in proc.stdout
    _no_secret(proc, keys)
    assert path.read_bytes() == before


def test_pragma_and_baseline_from_the_cli(kit, tmp_path):
    a, b = kit.secret("groq-api-key", 15), kit.secret("groq-api-key", 16)
    f = tmp_path / "conf.py"
    f.write_text(f"A = '{a}'  # securellm: allow\nB = '{b}'\n")
    proc = kit.run_cli("scan", "--format", "json", f, cwd=tmp_path)
    assert [x["line"] for x in json.loads(proc.stdout)["findings"]] == [2]
    proc = kit.run_cli("scan", "--write-baseline", ".securellm-baseline.json", f, cwd=tmp_path)
    assert proc.returncode == EXIT_CLEAN
    baseline = (tmp_path / ".securellm-baseline.json").read_text()
    assert a not in baseline and b not in baseline and "fingerprint" in baseline
    # found automatically in the current directory
    assert kit.run_cli("scan", f, cwd=tmp_path).returncode == EXIT_CLEAN
    assert kit.run_cli("scan", "--no-baseline", f, cwd=tmp_path).returncode == EXIT_FINDINGS
    assert kit.run_cli("scrub", "--verify", f, cwd=tmp_path).returncode == EXIT_CLEAN


# -- bad input: clear error on stderr, exit 2, original untouched ---------------------------------


def _bad(kit, path, *extra, expect):
    before = path.read_bytes()
    for cmd in (["scan"], ["scrub"]):
        proc = kit.run_cli(*cmd, *extra, path)
        assert proc.returncode == EXIT_ERROR, (cmd, proc.stderr)
        err = proc.stderr.decode()
        assert err.startswith("jupyter-securellm: error: ") and expect in err, err
        assert "Traceback" not in err
        assert path.read_bytes() == before
    return err


def test_truncated_json(kit, leaky):
    path, keys = leaky
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    err = _bad(kit, path, expect="not valid JSON")
    assert "line" in err and all(k not in err for k in keys)


def test_nbformat_3(kit, tmp_path):
    p = tmp_path / "old.ipynb"
    p.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
                             "worksheets": [{"cells": [{"cell_type": "code", "input": "x = 1", "outputs": []}]}]}))
    _bad(kit, p, expect="nbformat 3 is not supported")


def test_missing_fields(kit, tmp_path):
    p = tmp_path / "nosrc.ipynb"
    p.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                             "cells": [{"cell_type": "code", "metadata": {}, "outputs": []}]}))
    _bad(kit, p, expect="cells[0]: missing field 'source'")


def test_binary_named_ipynb(kit, tmp_path):
    p = tmp_path / "image.ipynb"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    _bad(kit, p, expect="not a notebook (binary content)")
    p.write_bytes(b"\xff\xfe{\x00}")
    _bad(kit, p, expect="not a notebook")


def test_read_only_file(kit, leaky):
    path, keys = leaky
    path.chmod(0o444)
    before = path.read_bytes()
    assert kit.run_cli("scan", path).returncode == EXIT_FINDINGS  # reading is fine
    proc = kit.run_cli("scrub", path)
    assert proc.returncode == EXIT_ERROR and b"read-only" in proc.stderr
    assert path.read_bytes() == before
    _no_secret(proc, keys)


def test_missing_file_and_bad_baseline(kit, tmp_path):
    proc = kit.run_cli("scan", tmp_path / "nope.ipynb")
    assert proc.returncode == EXIT_ERROR and b"no such file" in proc.stderr
    bad = tmp_path / "b.json"
    bad.write_text("{")
    proc = kit.run_cli("scan", "--baseline", bad, tmp_path)
    assert proc.returncode == EXIT_ERROR and b"not valid JSON" in proc.stderr


@pytest.mark.slow
def test_200mb_notebook(kit, tmp_path):
    """Refused by default (clear error, exit 2, untouched); processed with --max-size 0, key found."""
    key = kit.secret("openai-api-key", 17)
    chunk = "".join(f"epoch {i}/1000 - loss: 0.{i:04d} - accuracy: 0.9{i % 10} - lr: 1e-4 | " for i in range(14)) + "\n"
    line = json.dumps(chunk)
    # ~200 MB of stream output lines written straight to disk, with one key near the end
    p = tmp_path / "huge.ipynb"
    with open(p, "w", encoding="utf-8") as f:
        f.write('{\n "cells": [\n  {\n   "cell_type": "code",\n   "execution_count": 1,\n   "id": "big",\n'
                '   "metadata": {},\n   "outputs": [\n    {\n     "name": "stdout",\n     "output_type": "stream",\n'
                '     "text": [\n')
        n = 250_000
        for _ in range(n):
            f.write("      " + line + ",\n")
        f.write("      " + json.dumps(f"key={key}\n") + "\n     ]\n    }\n   ],\n   \"source\": [\"print(1)\"]\n  }\n"
                " ],\n \"metadata\": {},\n \"nbformat\": 4,\n \"nbformat_minor\": 5\n}\n")
    size = p.stat().st_size
    assert size > 200 * 1000 * 1000
    _bad(kit, p, expect="larger than the limit of 100 MB")
    proc = kit.run_cli("scan", "--format", "json", "--max-size", "0", p, timeout=600)
    assert proc.returncode == EXIT_FINDINGS, proc.stderr
    (f,) = json.loads(proc.stdout)["findings"]
    assert f["line"] == 13 + n and f["field"] == "outputs[0].text" and f["column"] == 12


def test_scrub_through_a_symlink_keeps_the_link(kit, leaky, tmp_path):
    path, keys = leaky
    link = tmp_path / "link.ipynb"
    link.symlink_to(path)
    assert kit.run_cli("scrub", link).returncode == EXIT_CLEAN
    assert link.is_symlink() and all(k not in path.read_text() for k in keys)


def test_text_with_invalid_utf8_keeps_its_bytes(kit, tmp_path):
    key = kit.secret("github-token", 18)
    raw = b"bad \xff\xfe bytes\ntoken=" + key.encode() + b" \xc3\n"
    p = tmp_path / "bad.log"
    p.write_bytes(raw)
    proc = kit.run_cli("scan", "--format", "json", p)
    assert proc.returncode == EXIT_FINDINGS
    (f,) = json.loads(proc.stdout)["findings"]
    assert (f["line"], f["column"]) == (2, 7)
    assert kit.run_cli("scrub", p).returncode == EXIT_CLEAN
    assert p.read_bytes() == raw.replace(key.encode(), b"[REDACTED:github-token]")
