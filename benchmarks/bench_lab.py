"""What does the JupyterLab extension cost? Page load to a ready notebook with and without it, and its size.

Two JupyterLab servers run side by side, identical (same server extension, OpenBao, stand-in provider),
except that one loads our labextension and the other does not. One headless Chromium (Debian's
/usr/bin/chromium) loads the same notebook from each, alternately, each load in a fresh browser context
(cold cache, as a first visit), so both sides see the same machine load. Measured per load, from
`page.goto` until:

* "notebook ready": JupyterLab's splash is gone and the notebook's cells are rendered;
* "kernel idle": the notebook's kernel has started and is idle (this adds the kernel start-up time).

The median of --loads loads per side is reported, with the ratio. Target (issue 12): at most 5% added.
Also reported: the size of the built bundle (our own JavaScript; JupyterLab's shared packages are not
bundled). Target: under 150 kB minified.

    .venv/bin/python benchmarks/bench_lab.py              # 9 loads per side (after 1 warm-up each)
    .venv/bin/python benchmarks/bench_lab.py --loads 15 --json
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_OVERHEAD = 0.05
TARGET_BUNDLE_KB = 150


def bundle_size() -> dict:
    """Bytes of the built labextension's JavaScript (minified), and gzipped."""
    static = REPO / "jupyter_securellm" / "labextension" / "static"
    files = sorted(static.glob("*.js"))
    if not files:
        raise SystemExit("bench_lab: the labextension is not built; run `make labextension` first.")
    raw = sum(f.stat().st_size for f in files)
    gz = sum(len(gzip.compress(f.read_bytes(), 9)) for f in files)
    return {"files": len(files), "bytes": raw, "gzip_bytes": gz}


def load_once(browser, server, notebook: str) -> dict:
    from jupyter_securellm.testing.lab import wait_for_kernel_idle

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(server.url(notebook))
        page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=120_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-CodeCell .cm-content", timeout=120_000)
        ready = time.perf_counter() - t0
        wait_for_kernel_idle(page, 120)
        idle = time.perf_counter() - t0
        if server.with_extension:  # make sure we measured a page that really runs our front end
            page.wait_for_selector(".jp-securellm-status", timeout=30_000)
        else:
            assert page.locator(".jp-securellm-status").count() == 0
        return {"ready": ready, "idle": idle}
    finally:
        context.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=9, help="measured loads per side (default 9)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args(argv)

    from nbformat.v4 import new_code_cell, new_markdown_cell
    from playwright.sync_api import sync_playwright

    from jupyter_securellm.testing.lab import LabServer, launch_chromium

    size = bundle_size()
    cells = [new_markdown_cell("# Sales analysis"), new_code_cell("import math\nx = [math.sqrt(i) for i in range(10)]"),
             new_code_cell("%load_ext jupyter_securellm"), new_code_cell("print(sum(x))")]
    servers = {"with": LabServer(with_extension=True), "without": LabServer(with_extension=False)}
    results: dict = {"with": [], "without": []}
    try:
        for s in servers.values():
            s.start()
            s.write_notebook("bench.ipynb", cells)
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                for name in ("with", "without"):  # warm-up: server caches, kernel specs, litellm import
                    load_once(browser, servers[name], "bench.ipynb")
                for i in range(args.loads):
                    order = ("with", "without") if i % 2 == 0 else ("without", "with")
                    for name in order:
                        results[name].append(load_once(browser, servers[name], "bench.ipynb"))
            finally:
                browser.close()
    finally:
        for s in servers.values():
            s.stop()

    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    report = {"loads_per_side": args.loads, "bundle": size}
    print(f"JupyterLab page load to a ready notebook, {args.loads} loads per side, alternating, fresh context each")
    print(f"{'milestone':<16} {'with (s)':>10} {'without (s)':>12} {'added':>8}")
    for key, label in (("ready", "notebook ready"), ("idle", "kernel idle")):
        w, wo = med("with", key), med("without", key)
        added = w / wo - 1
        report[key] = {"with_s": round(w, 3), "without_s": round(wo, 3), "added": round(added, 4),
                       "with_all": [round(r[key], 3) for r in results["with"]],
                       "without_all": [round(r[key], 3) for r in results["without"]]}
        print(f"{label:<16} {w:>10.3f} {wo:>12.3f} {added:>+7.1%}")
    ready = report["ready"]["added"]
    print(f"target: <= {TARGET_OVERHEAD:.0%} added to 'notebook ready': {'met' if ready <= TARGET_OVERHEAD else 'NOT met'}")
    print(f"bundle: {size['files']} JS files, {size['bytes'] / 1000:.1f} kB minified, {size['gzip_bytes'] / 1000:.1f} kB "
          f"gzipped (target < {TARGET_BUNDLE_KB} kB minified): {'met' if size['bytes'] < TARGET_BUNDLE_KB * 1000 else 'NOT met'}")
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
