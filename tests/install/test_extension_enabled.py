"""`pip install` alone enables the server extension (jupyter-config/server-config via hatch shared-data)."""
import re
import subprocess
import sys
from pathlib import Path


def test_server_extension_is_enabled_and_valid_after_install(tmp_path):
    jupyter = Path(sys.executable).with_name("jupyter")
    env = {"PATH": f"{jupyter.parent}:/usr/bin:/bin", "HOME": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    out = subprocess.run([str(jupyter), "server", "extension", "list"], capture_output=True, text=True,
                         timeout=120, env=env)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    assert re.search(r"jupyter_securellm\s+enabled", text), text
    assert re.search(r"jupyter_securellm 0\.\d+\.\d+\s+OK", text), text
