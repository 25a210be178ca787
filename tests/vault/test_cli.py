"""Command-line entry points of the test services, used by the demo."""
import json
import subprocess
import sys

import hvac


def test_openbao_cli_keeps_state_across_runs(tmp_path):
    """`python -m jupyter_securellm.testing.openbao --dir D` (for the demo) reuses its state."""
    def run():
        p = subprocess.Popen([sys.executable, "-m", "jupyter_securellm.testing.openbao", "--dir", str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = p.stdout.readline()
        if "OpenBao listening on http://127.0.0.1:" not in line:
            p.terminate()
            p.wait(timeout=20)
            raise AssertionError(f"OpenBao CLI did not start: {line!r}")
        return p

    p = run()
    try:
        info = json.loads((tmp_path / "openbao.json").read_text())
        token = (tmp_path / "root-token").read_text().strip()
        assert token not in (tmp_path / "openbao.json").read_text()
        assert (tmp_path / "root-token").stat().st_mode & 0o077 == 0
        hvac.Client(url=info["url"], token=token).secrets.kv.v2.create_or_update_secret(
            path="demo", secret={"k": "kept"}, mount_point="secret")
    finally:
        p.terminate()
        p.wait(timeout=20)
    p = run()
    try:
        got = hvac.Client(url=info["url"], token=token).secrets.kv.v2.read_secret_version(
            path="demo", mount_point="secret", raise_on_deleted_version=True)
        assert got["data"]["data"] == {"k": "kept"}
    finally:
        p.terminate()
        p.wait(timeout=20)
