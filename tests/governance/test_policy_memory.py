"""Policy decisions do not leak native memory, whatever loaded libstdc++ first (governance/policy.py, "Memory").

regopy's library carries its own C++ `operator new`/`delete`. In a process where a C++ extension loaded
libstdc++ before regopy (frozenlist under aiohttp and litellm, tokenizers, pyzmq: always the case in the
broker), each decision leaked about 1 kB of C-heap memory that tracemalloc does not see. The check runs
in a fresh interpreter (the test process has loaded regopy already) and counts the bytes glibc's malloc
has handed out (`mallinfo2().uordblks`) across decisions: a size, not a timing.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallinfo2 (Linux)")

DECISIONS = 3000

PROBE = textwrap.dedent(f"""
    import ctypes, json

    # what a C++ extension imported before the policy does (frozenlist, tokenizers, pyzmq): libstdc++, local
    ctypes.CDLL("libstdc++.so.6")

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2

    from jupyter_securellm.governance.policy import PolicyEngine, build_input

    engine = PolicyEngine([])
    allowed = build_input(user="u", action="chat", model="gpt", models=["gpt"], host="h", host_allowed=True)
    denied = build_input(user="u", action="chat", model="other", models=["gpt"], host="h", host_allowed=True)
    for _ in range(300):
        engine.decide(allowed)
    before = libc.mallinfo2().uordblks
    results = set()
    for i in range({DECISIONS}):
        results.add(engine.decide(denied if i % 2 else allowed).allowed)
    print(json.dumps({{"grown": libc.mallinfo2().uordblks - before, "results": sorted(results)}}))
""")


def test_policy_decisions_keep_the_c_heap_flat(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    import json

    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["results"] == [False, True]  # both decisions were really made
    # measured: 10.4 MB over 3,000 decisions before the fix (3.5 kB each), 7 kB after
    assert report["grown"] < 100 * DECISIONS, f"C heap grew {report['grown']} bytes over {DECISIONS} decisions"


def test_regopy_is_loaded_after_libstdcxx_is_global(tmp_path):
    """The order the fix relies on: `global_libstdcxx` runs before regopy's library is loaded."""
    probe = textwrap.dedent("""
        import ctypes, os, sys
        from jupyter_securellm.governance import policy
        assert "regopy" not in sys.modules
        policy._regopy()
        assert "regopy" in sys.modules
        # dlsym(RTLD_DEFAULT) searches the global scope only: it finds a libstdc++ symbol iff libstdc++ is global
        libdl = ctypes.CDLL(None)
        print(bool(libdl.dlsym(ctypes.c_void_p(0), b"_ZNSt6localeC1Ev")))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
