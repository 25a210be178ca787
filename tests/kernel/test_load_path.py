"""`%load_ext` in a fresh interpreter, as a kernel starts it: the engine's rules come from the on-disk
cache (or are parsed and cached on the first start) and compile on first use, and the env guard still
catches a secret-shaped value under an innocent name before any cell runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = r"""
import json, os, subprocess, sys
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
cfg = Config(); cfg.HistoryManager.hist_file = ":memory:"
ip = InteractiveShell.instance(config=cfg)
ip.run_line_magic("load_ext", "jupyter_securellm")
key = os.environ.get("INNOCENT_LOOKING")
child = subprocess.run(["env"], capture_output=True, text=True).stdout
print(json.dumps({"in_environ": key is not None, "in_child": sys.argv[1] in child,
                  "tomllib": "tomllib" in sys.modules}), file=sys.__stdout__)
"""


def test_env_guard_catches_a_secret_value_at_load_with_a_cold_and_a_warm_cache(tmp_path, fake_key):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), INNOCENT_LOOKING=fake_key)
    runs = []
    for _ in ("cold", "warm"):
        out = subprocess.run([sys.executable, "-c", PROBE, fake_key], capture_output=True, text=True, env=env,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        assert fake_key not in out.stdout + out.stderr
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for run in runs:
        assert not run["in_environ"] and not run["in_child"]
    assert runs[0]["tomllib"] and not runs[1]["tomllib"]  # the second start read the cached rules
