"""The kernel's inherited stdout/stderr reach the server log only through the server's redactor.

Trust tier 1 (a secret in the server log goes to journald / the container log / central logging) and
tier 2 in part (kernel code cannot route around the pipes it was given at launch). Real OpenBao, real
Jupyter server, real kernel; the secret is a `secrets.get` value read from OpenBao by the broker.
"""
from __future__ import annotations

import time
import uuid

import pytest

pytestmark = pytest.mark.slow

WRITERS = {
    "fd1": "os.write(1, ('fd1 %s {m}\\n' % s).encode())",
    "fd2": "os.write(2, ('fd2 %s {m}\\n' % s).encode())",
    "dunder_stdout": "print('dunder-out', s, '{m}', file=sys.__stdout__, flush=True)",
    "dunder_stderr": "print('dunder-err', s, '{m}', file=sys.__stderr__, flush=True)",
    "child": "subprocess.run(['sh', '-c', 'printf \"child %s {m}\\\\n\" \"$0\" >&2', s], check=True)",
    "libc": "d = ('libc %s {m}\\n' % s).encode(); ctypes.CDLL(None).write(1, d, len(d))",
    "one_char_at_a_time": "[os.write(1, c.encode()) for c in 'chars ' + s + ' {m}\\n']",
    "kernel_own_copy": "os.write(getattr(sys.stdout, '_original_stdstream_copy', 1), ('copy %s {m}\\n' % s).encode())",
}


def _wait_for(path, needles, timeout=60):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")
        if all(n in text for n in needles):
            return text
        time.sleep(0.1)
    missing = [n for n in needles if n not in text]
    raise AssertionError(f"never reached the server log: {missing}")


def test_secret_absent_from_server_log(demo_stack, server_kernel, assert_absent):
    log = demo_stack.workdir / "jupyter.log"
    k = server_kernel()
    k.run("import os, sys, ctypes, subprocess\n"
          "from jupyter_securellm import secrets\n"
          "s = secrets.get('db/warehouse', 'password').reveal()")
    markers = {name: f"marker-{name}-{uuid.uuid4().hex[:8]}" for name in WRITERS}
    for name, code in WRITERS.items():
        k.run(code.format(m=markers[name]))
    ordinary = f"ordinary-kernel-log-{uuid.uuid4().hex}"
    k.run(f"import logging; logging.getLogger('lib').warning('{ordinary}')\n"
          f"print('{ordinary}-stderr', file=sys.__stderr__, flush=True)")
    text = _wait_for(log, [*markers.values(), ordinary + "-stderr"])
    assert_absent(text, demo_stack.db_password, "the server log")
    # every writer's line arrived, with the secret replaced by the placeholder
    for name, marker in markers.items():
        line = next(ln for ln in text.splitlines() if marker in ln)
        assert "[REDACTED:known-secret]" in line, (name, line)
