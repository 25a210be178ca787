"""Tier 2, demo only: no process the demo starts carries a token on its command line (readable by any
process of the same user through /proc/<pid>/cmdline), and the root token OpenBao generated for set-up is
revoked once set-up is done, so a kernel that finds it anyway (memory of the demo process) gets nothing."""
import urllib.error
import urllib.request


def test_no_token_on_a_command_line_and_the_setup_root_token_is_revoked(stack):
    root = stack.bao.root_token
    assert root
    for proc in stack.procs:
        cmdline = open(f"/proc/{proc.pid}/cmdline", "rb").read()
        assert root.encode() not in cmdline and b"token" not in cmdline.lower(), cmdline[:200]
    req = urllib.request.Request(f"{stack.bao_url}/v1/auth/token/lookup-self", headers={"X-Vault-Token": root})
    try:
        urllib.request.urlopen(req, timeout=10)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    assert status == 403, "the set-up root token still works"
