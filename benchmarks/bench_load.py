"""How light is `%load_ext jupyter_securellm`, and what does live redaction cost?

1. `%load_ext` wall time and RSS increase, side by side with jupyter-ai 2.x (`jupyter_ai_magics`) and
   jupyter-ai 3.x (`jupyter_ai_magic_commands`). Those two are installed at run time into SEPARATE
   throwaway virtualenvs under /tmp (never into the project's .venv). Each measurement is a fresh
   interpreter with a plain IPython InteractiveShell; the median of --repeat runs is reported.
2. Printing 100,000 lines in a real ipykernel (jupyter_client, wall time until the kernel is idle
   again, all output received) with the extension loaded (redaction on) vs not loaded (off).

Targets (issue 5): load <= 50 ms and <= 10 MB, >= 15x faster than jupyter-ai 2.x; redaction overhead <= 20%.

    .venv/bin/python benchmarks/bench_load.py              # everything (installs the comparison venvs)
    .venv/bin/python benchmarks/bench_load.py --only ours  # no installs
    .venv/bin/python benchmarks/bench_load.py --reuse /tmp/securellm-bench  # keep/reuse the venvs
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS, TARGET_MB, TARGET_SPEEDUP, TARGET_OVERHEAD = 50.0, 10.0, 15.0, 0.20

CONTENDERS = {
    # label: (module for %load_ext, pip requirement or None for this project's own venv, magic it registers)
    "jupyter_securellm": ("jupyter_securellm", None, "llm"),
    "jupyter-ai 2.x (jupyter_ai_magics)": ("jupyter_ai_magics", "jupyter-ai-magics<3", "ai"),
    "jupyter-ai 3.x (jupyter_ai_magic_commands)": ("jupyter_ai_magic_commands", "jupyter-ai-magic-commands", "ai"),
}

PROBE = r"""
import gc, json, os, sys, time
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

cfg = Config(); cfg.HistoryManager.hist_file = ":memory:"
ip = InteractiveShell.instance(config=cfg)
gc.collect()
r0 = rss(); t0 = time.perf_counter()
ip.run_line_magic("load_ext", sys.argv[1])
dt = time.perf_counter() - t0
r1 = rss()
magics = ip.magics_manager.magics
ok = sys.argv[2] in magics["line"] or sys.argv[2] in magics["cell"]
print(json.dumps({"ms": dt * 1000, "mb": (r1 - r0) / 1e6, "ok": ok}))
"""

#: After `%load_ext jupyter_securellm`: the engine's first uses, which pay for what load defers (rules
#: compiled on first use, the stream detectors built by the first output).
FIRST_USE = r"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
cfg = Config(); cfg.HistoryManager.hist_file = ":memory:"
ip = InteractiveShell.instance(config=cfg)
ip.run_line_magic("load_ext", "jupyter_securellm")
from jupyter_securellm.detect import fake_secret
from jupyter_securellm.kernel.redaction import get_redactor
r = get_redactor()
key = fake_secret("github-token", seed=1)
t0 = time.perf_counter(); out = r.redact(f"GITHUB_TOKEN={key} in a log line"); t1 = time.perf_counter()
sr = r.stream(); sr.feed("the first line a cell prints\n"); sr.flush(); t2 = time.perf_counter()
print(json.dumps({"scan_ms": (t1 - t0) * 1000, "stream_ms": (t2 - t1) * 1000, "ok": key not in out}),
      file=sys.__stdout__)
"""

PRINT_CELL = "for i in range(100000):\n    print(i, 'an ordinary line of log output, nothing secret in it')"


def make_venv(where: Path, requirement: str) -> Path:
    py = where / "bin" / "python"
    if py.exists():
        return py
    base = getattr(sys, "_base_executable", sys.executable)
    print(f"  creating {where} and installing {requirement!r} (this takes a while) ...", flush=True)
    subprocess.run([base, "-m", "venv", str(where)], check=True)
    constraints = where / "constraints.txt"
    constraints.write_text("litellm!=1.82.7,!=1.82.8\n")  # the two malicious uploads (March 2026)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c",
                    str(constraints), "ipython", requirement], check=True)
    return py


def measure_load(python: str, module: str, magic: str, repeat: int) -> dict:
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONDONTWRITEBYTECODE="1")
    env.pop("JUPYTER_SECURELLM_URL", None)
    runs = []
    for _ in range(repeat + 1):  # the first run warms the OS file cache and .pyc files; dropped
        out = subprocess.run([python, "-c", PROBE, module, magic], capture_output=True, text=True, env=env,
                             timeout=600)
        if out.returncode != 0:
            return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    runs = runs[1:]
    return {"ms": statistics.median(r["ms"] for r in runs), "mb": statistics.median(r["mb"] for r in runs),
            "ok": all(r["ok"] for r in runs), "runs": len(runs)}


def measure_first_use(python: str, repeat: int) -> dict:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("JUPYTER_SECURELLM_URL", None)
    runs = []
    for _ in range(repeat):
        out = subprocess.run([python, "-c", FIRST_USE], capture_output=True, text=True, env=env, timeout=600)
        if out.returncode != 0:
            return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"scan_ms": statistics.median(r["scan_ms"] for r in runs),
            "stream_ms": statistics.median(r["stream_ms"] for r in runs), "ok": all(r["ok"] for r in runs)}


def time_print(load_ext: bool, repeat: int) -> float:
    """Median seconds for PRINT_CELL in a fresh real kernel, until idle with all output received."""
    from jupyter_client.manager import KernelManager

    results = []
    for _ in range(repeat):
        km = KernelManager(kernel_name="python3")
        km.start_kernel(env={k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_SECURELLM")})
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            if load_ext:
                kc.execute_interactive("%load_ext jupyter_securellm", timeout=60, output_hook=lambda m: None)
            kc.execute_interactive("print('warm')", timeout=60, output_hook=lambda m: None)
            lines = 0

            def hook(msg):
                nonlocal lines
                if msg["msg_type"] == "stream":
                    lines += msg["content"]["text"].count("\n")

            t0 = time.perf_counter()
            kc.execute_interactive(PRINT_CELL, timeout=600, output_hook=hook)
            results.append(time.perf_counter() - t0)
            assert lines == 100000, f"expected 100000 lines, got {lines}"
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    return statistics.median(results)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["all", "ours", "print"], default="all")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--print-repeat", type=int, default=3)
    ap.add_argument("--reuse", metavar="DIR", help="keep the comparison venvs in DIR and reuse them next time")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)

    results: dict = {"load": {}, "print": {}, "first_use": {}}
    failures = []
    if args.only in ("all", "ours"):
        root = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="securellm-bench-", dir="/tmp"))
        try:
            for label, (module, req, magic) in CONTENDERS.items():
                if req is None:
                    python = sys.executable
                elif args.only == "ours":
                    continue
                else:
                    try:
                        python = str(make_venv(root / module, req))
                    except subprocess.CalledProcessError as exc:
                        results["load"][label] = {"error": f"install failed ({exc.returncode})"}
                        continue
                results["load"][label] = measure_load(python, module, magic, args.repeat)
        finally:
            if not args.reuse:
                shutil.rmtree(root, ignore_errors=True)
        print(f"\n%load_ext in a plain IPython shell (median of {args.repeat} fresh interpreters, python "
              f"{sys.version.split()[0]}):")
        print(f"  {'extension':<46} {'wall ms':>9} {'RSS +MB':>9}")
        for label, r in results["load"].items():
            if "error" in r:
                print(f"  {label:<46} error: {r['error']}")
            else:
                print(f"  {label:<46} {r['ms']:>9.1f} {r['mb']:>9.1f}{'' if r['ok'] else '  (magic not registered!)'}")
        print(f"  (load average {os.getloadavg()[0]:.1f}; each row is its own fresh interpreters, so compare "
              "rows measured in the same run)")
        first = results["first_use"] = measure_first_use(sys.executable, args.repeat)
        if "error" in first:
            failures.append(f"first use after load failed: {first['error']}")
        else:
            print(f"  after %load_ext jupyter_securellm: first scan (a line with a key) {first['scan_ms']:.1f} ms, "
                  f"first output stream {first['stream_ms']:.1f} ms (median of {args.repeat})")
            if not first["ok"]:
                failures.append("the first scan after load did not redact the key")
        ours = results["load"]["jupyter_securellm"]
        if "error" in ours or not ours["ok"]:
            failures.append("jupyter_securellm did not load")
        else:
            if ours["ms"] > TARGET_MS:
                failures.append(f"load {ours['ms']:.1f} ms > {TARGET_MS} ms")
            if ours["mb"] > TARGET_MB:
                failures.append(f"load RSS +{ours['mb']:.1f} MB > {TARGET_MB} MB")
            ai2 = results["load"].get("jupyter-ai 2.x (jupyter_ai_magics)")
            if ai2 and "ms" in ai2:
                speedup = ai2["ms"] / ours["ms"]
                results["speedup_vs_jupyter_ai_2"] = speedup
                print(f"  speed-up vs jupyter-ai 2.x: {speedup:.0f}x (target >= {TARGET_SPEEDUP:.0f}x)")
                if speedup < TARGET_SPEEDUP:
                    failures.append(f"only {speedup:.1f}x faster than jupyter-ai 2.x")
            ai3 = results["load"].get("jupyter-ai 3.x (jupyter_ai_magic_commands)")
            if ai3 and "ms" in ai3:
                results["speedup_vs_jupyter_ai_3"] = ai3["ms"] / ours["ms"]
                print(f"  speed-up vs jupyter-ai 3.x: {ai3['ms'] / ours['ms']:.0f}x")
    if args.only in ("all", "print"):
        off = time_print(False, args.print_repeat)
        on = time_print(True, args.print_repeat)
        overhead = on / off - 1
        results["print"] = {"off_s": off, "on_s": on, "overhead": overhead}
        print(f"\nprint 100,000 lines in a real ipykernel (median of {args.print_repeat} kernels each):")
        print(f"  redaction off: {off:.2f} s   on: {on:.2f} s   overhead: {overhead * 100:+.1f}% "
              f"(target <= {TARGET_OVERHEAD * 100:.0f}%)")
        if overhead > TARGET_OVERHEAD:
            failures.append(f"redaction overhead {overhead * 100:.1f}% > {TARGET_OVERHEAD * 100:.0f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print("\nTARGETS: " + ("all met" if not failures else "MISSED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
