"""`doctor --sbom FILE` writes a CycloneDX SBOM of the running environment."""
from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

from jupyter_securellm.doctor.packages import canonical


def test_sbom_lists_this_environment(tmp_path):
    out = tmp_path / "sbom.json"
    proc = subprocess.run([sys.executable, "-m", "jupyter_securellm", "doctor", "--sbom", str(out),
                           "--only", "environment.compromised"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    bom = json.loads(out.read_text())
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"].startswith("1.")
    comps = {canonical(c["name"]): c for c in bom["components"]}
    assert comps["litellm"]["version"] == version("litellm")
    assert comps["litellm"]["purl"] == f"pkg:pypi/litellm@{version('litellm')}"
    for name in ("hvac", "jupyter-server", "cyclonedx-bom"):
        assert comps[name]["purl"] == f"pkg:pypi/{name}@{version(name)}"


def test_sbom_to_an_unwritable_place_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "jupyter_securellm", "doctor", "--sbom",
                           str(tmp_path / "missing-dir" / "sbom.json"), "--only", "environment.compromised"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "cannot write the SBOM" in proc.stderr
