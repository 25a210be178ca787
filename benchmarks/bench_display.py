"""Cost of keeping output in order: `display()` in a real kernel with the extension loaded, with and
without the wait for fd-level output (docs/kernel.md, "Output order and whole placeholders").

    python benchmarks/bench_display.py [--n 500] [--rounds 3]

The two variants alternate in ONE kernel, so machine load hits both alike.
"""
from __future__ import annotations

import argparse
import os
import queue
import sys
import time

CELL = ("import time\nfrom IPython.display import display\nt = time.perf_counter()\n"
        "for i in range({n}): display(i)\nprint('MS', (time.perf_counter() - t) / {n} * 1e3)")


def run(kc, code: str) -> str:
    msg_id = kc.execute(code)
    out = []
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=300)
        except queue.Empty:
            raise SystemExit("the kernel did not answer") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    from jupyter_client.manager import KernelManager

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_SECURELLM", "PYTEST"))}
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    try:
        run(kc, "%load_ext jupyter_securellm\nfrom jupyter_securellm.kernel import redaction\n"
                "wait = redaction.BatchGuard._settle_fd_pipe")
        variants = (("with the fd wait", "redaction.BatchGuard._settle_fd_pipe = wait"),
                    ("without it", "redaction.BatchGuard._settle_fd_pipe = lambda self, timeout=1.0: None"))
        for r in range(args.rounds):
            for label, setup in variants:
                run(kc, setup)
                out = run(kc, CELL.format(n=args.n))
                ms = float(out.split("MS")[-1].split()[0])
                print(f"round {r + 1}: {label:18s} {ms:6.3f} ms per display()", flush=True)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
