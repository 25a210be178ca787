"""Tier 2, demo only: the OpenBao dev server's root token is on its command line (readable by any
process of the same user through /proc/<pid>/cmdline), so `make demo` revokes it once set-up is done."""
import urllib.error
import urllib.request


def test_root_token_on_the_dev_server_command_line_is_revoked(stack):
    bao = next(p for p in stack.procs if b"server" in open(f"/proc/{p.pid}/cmdline", "rb").read()
               and b"-dev" in open(f"/proc/{p.pid}/cmdline", "rb").read())
    args = open(f"/proc/{bao.pid}/cmdline", "rb").read().split(b"\0")
    root = next(a.split(b"=", 1)[1].decode() for a in args if a.startswith(b"-dev-root-token-id="))
    req = urllib.request.Request(f"{stack.bao_url}/v1/auth/token/lookup-self", headers={"X-Vault-Token": root})
    try:
        urllib.request.urlopen(req, timeout=10)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    assert status == 403, "the root token read from the dev server's command line still works"
