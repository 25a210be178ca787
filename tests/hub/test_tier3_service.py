"""Trust tier 3 on a real JupyterHub: the broker runs as a Hub service under its own Unix user.

One Hub for the module (jupyter_securellm.testing.hub): Alice and Bob are real Unix users whose
servers run `jupyterhub-singleuser` with `broker_mode = "hub-service"`; the broker service runs under
a third uid with its own Vault AppRole. Each attack is paired with a control step that shows the
same attempt works where it should (root, or the user's own process), so a failure cannot be a typo.

The order of the last tests matters (Alice's server killed, then the service killed); they are last.
"""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from jupyter_securellm.detect import fake_secret
from jupyter_securellm.testing.hub import http, process_environ, process_memory_contains

pytestmark = pytest.mark.timeout(600)

CALL = '''
import json, os, urllib.request, urllib.error
TOKEN = os.environ.get("JUPYTER_SECURELLM_KERNEL_TOKEN", globals().get("TOKEN"))  # %load_ext removes it from os.environ
def call(method, path, body=None, headers=None, url=None, token=None):
    url = (url or os.environ["JUPYTER_SECURELLM_URL"]) + "/" + path
    h = {"Content-Type": "application/json"}
    tok = TOKEN if token is None else token
    if tok:
        h["X-SecureLLM-Token"] = tok
    h.update(headers or {})
    req = urllib.request.Request(url, method=method, headers=h, data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode("utf-8", "replace")[:200]
    except OSError as e:
        return 0, type(e).__name__
'''


@pytest.fixture(scope="module")
def servers(hub_stack):
    hub_stack.start_server(hub_stack.alice)
    hub_stack.start_server(hub_stack.bob)
    return hub_stack


@pytest.fixture(scope="module")
def alice_kernel(servers):
    k = servers.kernel(servers.alice)
    k.run(CALL + "\n%load_ext jupyter_securellm")
    yield k
    k.shutdown()


@pytest.fixture(scope="module")
def bob_kernel(servers):
    k = servers.kernel(servers.bob)
    k.run(CALL + "\n%load_ext jupyter_securellm")
    yield k
    k.shutdown()


def _token_of(kernel) -> str:
    """The kernel's capability token, masked on the way out (the kernel redacts it from plain output)."""
    masked = kernel.json("print(json.dumps(bytes(b ^ 0x55 for b in TOKEN.encode()).hex()))")
    return bytes(b ^ 0x55 for b in bytes.fromhex(masked)).decode()


def _key_forms(key: str) -> list[str]:
    return [key, key[:20], key[-20:]]


def test_llm_through_her_server_and_the_service(servers, alice_kernel):
    st, key = servers, servers.provider.key
    st.provider.reset()
    out, err = alice_kernel.run("%%llm -m gpt\nsay hello from tier three")
    assert not err, (err, st.log_text()[-6000:])  # the Hub log holds every server's
    assert "echo: say hello from tier three" in out
    reqs = [r for r in st.provider.requests if r.path.endswith("/chat/completions")]
    assert reqs and all(r.auth_ok for r in reqs), "the provider did not see the key held in Vault"

    status = alice_kernel.json("print(json.dumps(call('GET', 'status')))")
    code, body = status
    assert code == 200, body
    assert body["user"] == st.alice and body["tier"] == 3 and body["service"] == "securellm"
    assert body["via"] == "hub-service:securellm"
    assert body["groups"] == ["analysts"], "Hub groups must reach the broker (policy input.groups, budgets)"
    assert body["vault"]["auth_method"] == "approle"

    # %%llm streams: chunks pass through the server and the service as server-sent events
    code, events = alice_kernel.json('''
req = urllib.request.Request(os.environ["JUPYTER_SECURELLM_URL"] + "/chat/completions", method="POST",
    data=json.dumps({"model": "gpt", "stream": True, "messages": [{"role": "user", "content": "one two three four"}]}).encode(),
    headers={"X-SecureLLM-Token": TOKEN, "Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=60) as r:
    raw = r.read().decode()
print(json.dumps([r.status, [e[6:] for e in raw.split("\\n\\n") if e.startswith("data: ")]]))
''')
    assert code == 200 and events[-1] == "[DONE]" and len(events) > 3, events
    # the service's error types pass through the user's server unchanged (status, type, findings)
    st.provider.reset()
    leaked = fake_secret("github-token")
    code, body = alice_kernel.json(f"print(json.dumps(call('POST', 'chat/completions', {{'model': 'gpt', "
                                   f"'messages': [{{'role': 'user', 'content': 'use ' + {leaked!r}}}]}})))")
    assert code == 422 and body["error"]["type"] == "dlp_blocked", body
    assert body["error"]["findings"] and leaked not in json.dumps(body)
    assert not st.provider.requests, "a blocked prompt reached the provider"
    text = "".join((json.loads(e)["choices"][0]["delta"].get("content") or "") for e in events[:-1]
                   if json.loads(e).get("choices"))
    assert text == "echo: one two three four"
    for form in _key_forms(key):
        assert form not in out and form not in json.dumps(events)


def test_a_server_without_a_url_finds_the_service_in_the_hub_api(servers, alice_kernel, bob_kernel):
    """Alice's server has no hub_service_url and looks it up (GET /hub/api/services/securellm); Bob's is given one."""
    st = servers
    assert st.lookup_users == {st.alice}
    spawn = json.loads((st.dir / "hub.json").read_text())["user_args"]
    assert spawn[st.alice] == [] and spawn[st.bob] == [f"--SecureLLM.hub_service_url={st.service_direct_url}"]
    for kernel, word in ((alice_kernel, "looked"), (bob_kernel, "given")):
        out, err = kernel.run(f"%%llm -m gpt\nurl {word} up")
        assert not err and f"echo: url {word} up" in out, (out, err)
    # the Hub logged the lookup by Alice's server token, and none by Bob's (control: both called the service)
    lookups = [ln for ln in st.log_text().splitlines() if "GET /hub/api/services/securellm " in ln]
    assert any(f"({st.alice}@" in ln and " 200 " in f" {ln} " for ln in lookups), lookups
    assert not any(f"({st.bob}@" in ln for ln in lookups), lookups


def test_a_wrong_service_name_or_a_missing_scope_fails_naming_the_service(servers):
    """The lookup code of a user's server (HubServiceBroker), against the real Hub, with a token holding
    exactly the scopes a server token gets (control: the right name reaches the service)."""
    import asyncio

    from jupyter_securellm.hub.forward import HubServiceBroker
    from jupyter_securellm.server.errors import BrokerError
    from jupyter_securellm.server.governor import Caller

    st = servers
    server_like = st.user_token(st.alice, scopes=["access:services!service=securellm", "read:services!service=securellm"])
    no_read = st.user_token(st.alice, scopes=["access:services!service=securellm"])

    async def status(name, token):
        broker = HubServiceBroker(service_name=name, service_url="", api_url=st.api, token=token)
        try:
            return await broker.dispatch(Caller(user=st.alice), "status", {"version": "t"})
        except BrokerError as exc:
            return exc
        finally:
            await broker.aclose()

    ok = asyncio.run(status("securellm", server_like))
    assert isinstance(ok, dict) and ok["user"] == st.alice and ok["via"] == "hub-service:securellm", ok
    wrong = asyncio.run(status("securelm", server_like))
    assert isinstance(wrong, BrokerError) and wrong.type == "broker_unavailable", wrong
    assert "broker service 'securelm'" in wrong.message and "no service named 'securelm'" in wrong.message
    assert "hub_service_name" in wrong.message, wrong.message
    refused = asyncio.run(status("securellm", no_read))
    assert isinstance(refused, BrokerError) and refused.type == "broker_unavailable", refused
    assert "broker service 'securellm'" in refused.message and "read:services!service=securellm" in refused.message
    assert "HTTP 403" in refused.message, refused.message


def _audit(stack) -> list[dict]:
    path = stack.audit_paths["securellm"]
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def test_the_notebook_path_reaches_the_service_audit_as_declared(servers, alice_kernel, bob_kernel):
    """Alice's server knows her kernel's notebook (its Jupyter session) and tells the service; the audit
    record marks it as declared (her server runs as her: her word, never a policy input)."""
    st = servers
    nb = "reports/q3 été.ipynb"  # a space and non-ASCII: percent-encoded on the wire
    code, body = http("POST", st.user_url(st.alice, "api/sessions"), {"path": nb, "type": "notebook", "name": "q3",
                      "kernel": {"id": alice_kernel.kernel_id}}, token=st.admin_token)
    assert code == 201 and body["kernel"]["id"] == alice_kernel.kernel_id, (code, body)
    out, err = alice_kernel.run("%%llm -m gpt\nfrom a notebook")
    assert not err and "echo: from a notebook" in out, (out, err)
    out, err = bob_kernel.run("%%llm -m gpt\nfrom no notebook")  # control: a kernel without a session
    assert not err and "echo: from no notebook" in out, (out, err)

    deadline, mine, his = time.monotonic() + 20, [], []
    while time.monotonic() < deadline:  # call records are group-committed just after the answer
        recs = [r for r in _audit(st) if r["type"] == "call" and r.get("action") == "chat"]
        mine = [r for r in recs if r["user"] == st.alice and r.get("kernel_id") == alice_kernel.kernel_id]
        his = [r for r in recs if r["user"] == st.bob]
        if mine and mine[-1].get("notebook") == nb and his:
            break
        time.sleep(0.2)
    assert mine and mine[-1]["notebook"] == nb and mine[-1]["notebook_declared"] is True, mine[-1:]
    assert his and his[-1]["notebook"] is None and "notebook_declared" not in his[-1], his[-1:]


def test_users_server_holds_no_key_and_no_vault_credential(servers, alice_kernel):
    """Read as root: the key is in the broker's memory (control) and nowhere in Alice's server."""
    st, key = servers, servers.provider.key.encode()
    alice_kernel.run("%%llm -m gpt\nwarm the path")
    broker_pid, alice_pid = st.service_pid(), st.server_pid(st.alice)
    assert process_memory_contains(broker_pid, key), "control: the scan must find the key in the broker"
    assert not process_memory_contains(alice_pid, key), "Alice's server process holds the provider key"
    env = process_environ(alice_pid)
    for marker in (b"VAULT_TOKEN", b"secret_id", st.vault_info["secret_id"].encode(), key):
        assert marker not in env
    for path in st.users[st.alice].home.rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000:
            data = path.read_bytes()
            assert key not in data and st.vault_info["secret_id"].encode() not in data, path


ATTACK = '''
import json, os
targets = json.loads(os.environ.get("ATTACK_TARGETS", "{}")) or TARGETS
res = {}
for name, path in targets.items():
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
        res[name] = "read:" + str(len(data))
    except PermissionError:
        res[name] = "PermissionError"
    except OSError as e:
        res[name] = type(e).__name__
print(json.dumps(res))
'''


def test_alice_cannot_reach_the_broker_process_files_or_vault(servers, alice_kernel):
    st = servers
    bpid = st.service_pid()
    broker_home = st.users[st.broker_name].home
    targets = {
        "environ": f"/proc/{bpid}/environ", "mem": f"/proc/{bpid}/mem", "maps": f"/proc/{bpid}/maps",
        "cwd": f"/proc/{bpid}/cwd/securellm_broker.json", "root": f"/proc/{bpid}/root/proc/self/environ",
        "secret_id": str(st.secret_id_path), "config": str(st.broker_config), "home": str(broker_home / ".bashrc"),
    }
    got = alice_kernel.json(f"TARGETS = {targets!r}\n" + ATTACK)
    for name in ("environ", "mem", "maps", "cwd", "secret_id", "config", "home"):
        assert got[name] == "PermissionError", (name, got[name])
    assert not got["root"].startswith("read:"), got["root"]

    # controls: the same paths exist and hold what an attacker wants (root reads them) ...
    assert b"JUPYTERHUB_API_TOKEN=" in process_environ(bpid)
    assert st.secret_id_path.read_text() == st.vault_info["secret_id"]
    assert "vault_approle_role_id" in st.broker_config.read_text()
    # ... and the same reads work on Alice's own kernel process (so the attack code is real)
    own = alice_kernel.json("TARGETS = {'environ': '/proc/self/environ', 'maps': '/proc/self/maps'}\n" + ATTACK)
    assert own["environ"].startswith("read:") and own["maps"].startswith("read:")

    # Vault: the kernel holds no credential; with none, and with the (non-secret) role id alone, Vault refuses
    vault = alice_kernel.json(f'''
import json, urllib.request, urllib.error
def v(method, path, body=None, token=None):
    req = urllib.request.Request({st.bao.url!r} + path, method=method, data=None if body is None else json.dumps(body).encode())
    if token: req.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r: return r.status
    except urllib.error.HTTPError as e: return e.code
creds = sorted(k for k in os.environ if "VAULT" in k or "BAO" in k or k == "JUPYTERHUB_API_TOKEN")
print(json.dumps({{"read": v("GET", "/v1/secret/data/{st.vault_prefix}/llm/openai"),
                  "login": v("POST", "/v1/auth/approle/login", {{"role_id": {st.vault_info["role_id"]!r}}}),
                  "creds": creds}}))
''')
    assert vault["creds"] == [], vault
    assert vault["read"] in (400, 403) and vault["login"] in (400, 403), vault
    # control: the broker's credential does work (the login request itself is right)
    code, _ = http("POST", f"{st.bao.url}/v1/auth/approle/login",
                   {"role_id": st.vault_info["role_id"], "secret_id": st.vault_info["secret_id"]})
    assert code == 200


def test_alice_cannot_use_bobs_secrets_or_identity(servers, alice_kernel, bob_kernel):
    st, p = servers, servers.vault_prefix
    own = alice_kernel.json(f"print(json.dumps(call('POST', 'secrets/get', {{'path': '{p}/users/{st.alice}/db', 'key': 'password'}})))")
    assert own == [200, {"value": st.user_secrets[st.alice]}], "control: Alice reads her own {user} secret"
    # a forged `user` body field is refused outright (the strict request schema, server/schema.py) ...
    code, body = alice_kernel.json(
        f"print(json.dumps(call('POST', 'secrets/get', {{'path': '{p}/users/{st.bob}/db', 'key': 'password', 'user': '{st.bob}'}},"
        f" headers={{'X-Forwarded-User': '{st.bob}', 'X-SecureLLM-User': '{st.bob}', 'X-SecureLLM-Kernel': 'bob'}})))")
    assert code == 400 and body["error"]["type"] == "invalid_request", body
    assert st.user_secrets[st.bob] not in json.dumps(body)
    # ... and forged headers alone do not make her Bob: his path is denied
    code, body = alice_kernel.json(
        f"print(json.dumps(call('POST', 'secrets/get', {{'path': '{p}/users/{st.bob}/db', 'key': 'password'}},"
        f" headers={{'X-Forwarded-User': '{st.bob}', 'X-SecureLLM-User': '{st.bob}', 'X-SecureLLM-Kernel': 'bob'}})))")
    assert code == 403 and body["error"]["type"] == "policy_denied", body
    assert st.user_secrets[st.bob] not in json.dumps(body)

    # forged user fields do not change who is calling
    code, body = alice_kernel.json(f"print(json.dumps(call('GET', 'status', headers={{'X-Forwarded-User': '{st.bob}'}})))")
    assert body["user"] == st.alice
    st.provider.reset()
    code, body = alice_kernel.json(
        f"print(json.dumps(call('POST', 'chat/completions', {{'model': 'gpt', 'user': '{st.bob}', "
        f"'messages': [{{'role': 'user', 'content': 'who am i'}}]}})))")
    assert code == 200, body

    # Alice's own Hub token, straight to the service: still Alice, still no access to Bob's paths
    tok = st.user_token(st.alice)
    code, body = http("GET", st.service_url("status"), token=tok, headers={"X-Forwarded-User": st.bob})
    assert code == 200 and body["user"] == st.alice
    code, body = http("POST", st.service_url("secrets/get"), {"path": f"{p}/users/{st.bob}/db", "key": "password"}, token=tok)
    assert code == 403 and body["error"]["type"] == "policy_denied"
    # a Hub token without the service scope is refused, and so is no token at all
    weak = st.user_token(st.alice, scopes=["read:users:name!user"])
    code, body = http("GET", st.service_url("status"), token=weak)
    assert code == 401 and "access:services!service=securellm" in body["error"]["message"]
    code, body = http("GET", st.service_url("status"))
    assert code == 401 and body["error"]["type"] == "unauthorized"

    # Bob's kernel token: Alice cannot read it from Bob's kernel (control: root can) ...
    bob_pid = bob_kernel.json("import os; print(os.getpid())")
    assert b"JUPYTER_SECURELLM_URL=" in process_environ(bob_pid)  # control: root reads what Alice may not
    bob_token = _token_of(bob_kernel)
    assert bob_token
    got = alice_kernel.json(f"TARGETS = {{'environ': '/proc/{bob_pid}/environ', "
                            f"'runtime': '{st.users[st.bob].runtime_dir}/kernel-{bob_kernel.kernel_id}.json'}}\n" + ATTACK)
    assert got == {"environ": "PermissionError", "runtime": "PermissionError"}, got
    # ... and had she got it: her server does not know it, and the service takes no kernel tokens at all
    code, body = alice_kernel.json(f"print(json.dumps(call('GET', 'status', token={bob_token!r})))")
    assert code == 401 and body["error"]["type"] == "unauthorized"
    code, body = http("GET", st.service_url("status"), headers={"X-SecureLLM-Token": bob_token})
    assert code == 401
    # ... and sent straight to Bob's server's port from Alice's uid, it is refused (server/peer.py);
    # control: the same request from Bob's own kernel succeeds
    bob_url = bob_kernel.json("print(json.dumps(os.environ['JUPYTER_SECURELLM_URL']))")
    code, body = alice_kernel.json(f"print(json.dumps(call('GET', 'status', url={bob_url!r}, token={bob_token!r})))")
    assert code == 401 and "another Unix user" in body["error"]["message"], body
    code, body = bob_kernel.json(f"print(json.dumps(call('GET', 'status', url={bob_url!r})))")
    assert code == 200 and body["user"] == st.bob


def _dead(pid: int, timeout: float) -> bool:
    """True once `pid` is gone or a zombie (its sockets closed), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_bob_is_served_while_alices_server_is_killed(servers, alice_kernel, bob_kernel):
    st = servers
    alice_token = _token_of(alice_kernel)
    alice_url = alice_kernel.json("import os, json; print(json.dumps(os.environ['JUPYTER_SECURELLM_URL']))")
    # the token works while her server runs, from her kernel (control)
    code, body = alice_kernel.json("print(json.dumps(call('GET', 'status')))")
    assert code == 200 and body["user"] == st.alice, body

    pid = st.server_pid(st.alice)
    os.kill(pid, signal.SIGKILL)
    out, err = bob_kernel.run("%%llm -m gpt\nstill here?")
    assert not err and "echo: still here?" in out, (out, err, st.log_text()[-6000:])  # the Hub log holds every server's

    # SIGKILL is asynchronous: a connection made while her server is still closing its sockets is reset
    assert _dead(pid, 20), f"her server {pid} did not die"
    code, body = http("GET", f"{alice_url}/status", headers={"X-SecureLLM-Token": alice_token}, timeout=10)
    assert (code, body) == (0, "ConnectionRefusedError")
    code, body = http("GET", st.service_url("status"), headers={"X-SecureLLM-Token": alice_token})
    assert code == 401
    # the Hub notices and stops the server; her kernel tokens die with it, for good
    st.stop_server(st.alice)
    assert http("GET", st.service_url("status"), headers={"X-SecureLLM-Token": alice_token})[0] == 401


def test_service_down_fails_clearly_and_leaks_nothing(servers, bob_kernel):
    st, key = servers, servers.provider.key
    pid = st.service_pid()
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    out, err = bob_kernel.run("%%llm -m gpt\nanyone there?")
    assert time.monotonic() - t0 < 25
    text = out + err
    assert "broker service 'securellm'" in text and "unavailable" in text, text
    code, body = bob_kernel.json("print(json.dumps(call('GET', 'status')))")
    assert code == 503 and body["error"]["type"] == "broker_unavailable", body
    for form in _key_forms(key):
        assert form not in text and form not in json.dumps(body)
    assert key.encode() not in process_environ(st.server_pid(st.bob))
    assert not process_memory_contains(st.server_pid(st.bob), key.encode())
    # the Hub restarts its managed service; calls work again
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and st.service_pid() in (0, pid):
        time.sleep(0.5)
    st.wait_service()
    out, err = bob_kernel.run("%%llm -m gpt\nback again")
    assert not err and "echo: back again" in out
