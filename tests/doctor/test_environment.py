"""Environment checks, each against a throwaway venv that passes and one that fails.

The failing deployments are built for real: a `.pth` start-up hook planted in site-packages, and
a fake `litellm 1.82.7` wheel built at run time (no network) that ships a `.pth` hook like the
malicious upload did, installed with pip.
"""
from __future__ import annotations

import json

import pytest

from jupyter_securellm.testing.throwaway import Throwaway, make_wheel


@pytest.fixture
def venv(tmp_path):
    return Throwaway(tmp_path / "venv")


def report(proc):
    assert proc.returncode in (0, 1), proc.stderr
    return {c["check"]: c for c in json.loads(proc.stdout)["checks"]}


def test_clean_venv_passes_pth_and_compromised(venv):
    proc = venv.doctor("--only", "environment.pth-hooks", "--only", "environment.compromised", "--format", "json")
    checks = report(proc)
    assert proc.returncode == 0
    assert checks["environment.pth-hooks"]["status"] == "pass"
    assert checks["environment.compromised"]["status"] == "pass"


def test_planted_pth_hook_fails_and_names_the_file(venv):
    planted = venv.site / "zz_telemetry.pth"
    marker = venv.root / "hook-ran"
    planted.write_text(f"import pathlib; pathlib.Path({str(marker)!r}).touch()\n")
    proc = venv.doctor("--only", "environment.pth-hooks", "--format", "json")
    assert marker.exists(), "the planted hook really runs at interpreter start-up"
    check = report(proc)["environment.pth-hooks"]
    assert proc.returncode == 1 and check["status"] == "fail"
    assert any(str(planted) in d and "no installed package" in d for d in check["details"])


def test_allowlisted_name_without_its_owner_still_fails(venv):
    (venv.site / "distutils-precedence.pth").write_text("import os\n")  # setuptools' name, no setuptools
    check = report(venv.doctor("--only", "environment.pth-hooks", "--format", "json"))["environment.pth-hooks"]
    assert check["status"] == "fail"


def test_path_only_pth_is_not_a_hook(venv):
    (venv.site / "extra_paths.pth").write_text("/opt/somewhere\n# import in a comment does not run\n")
    assert report(venv.doctor("--only", "environment.pth-hooks", "--format", "json"))[
        "environment.pth-hooks"]["status"] == "pass"


def test_compromised_litellm_from_a_local_wheel_fails_both_checks(venv, tmp_path):
    wheel = make_wheel(tmp_path, "litellm", "1.82.7", {
        "litellm_init.pth": "import os  # the real one exfiltrated os.environ here\n",
        "litellm_fake/__init__.py": "",
    })
    venv.install_wheel(wheel)
    proc = venv.doctor("--only", "environment.pth-hooks", "--only", "environment.compromised", "--format", "json")
    checks = report(proc)
    assert proc.returncode == 1
    comp = checks["environment.compromised"]
    assert comp["status"] == "fail" and any(d.startswith("litellm 1.82.7 in " + str(venv.site)) for d in comp["details"])
    pth = checks["environment.pth-hooks"]
    assert pth["status"] == "fail"
    assert any("litellm_init.pth" in d and "owner: litellm 1.82.7" in d for d in pth["details"])


def test_tampered_pth_differs_from_its_record(venv, tmp_path):
    wheel = make_wheel(tmp_path, "coverage", "7.9.0", {"a1_coverage.pth": "import os\n"})
    venv.install_wheel(wheel)
    ok = report(venv.doctor("--only", "environment.pth-hooks", "--format", "json"))["environment.pth-hooks"]
    assert ok["status"] == "pass", "an allowlisted hook owned by its package passes"
    (venv.site / "a1_coverage.pth").write_text("import os; os.system('true')\n")
    bad = report(venv.doctor("--only", "environment.pth-hooks", "--format", "json"))["environment.pth-hooks"]
    assert bad["status"] == "fail" and any("differs from its owner's RECORD" in d for d in bad["details"])


def test_lock_check_names_what_was_installed_outside_the_lock(venv, tmp_path):
    listing = venv.run("-c", "import json; from jupyter_securellm.doctor.packages import installed;"
                             "print(json.dumps(sorted({(d.name, d.version) for d in installed()})))")
    pins = json.loads(listing.stdout)
    lock = tmp_path / "lock.txt"
    lock.write_text("".join(f"{n}=={v} \\\n    --hash=sha256:{'0' * 64}\n" for n, v in pins))
    ok = venv.doctor("--only", "environment.lock", "--lock", str(lock), "--format", "json")
    assert report(ok)["environment.lock"]["status"] == "pass", ok.stdout
    venv.install_wheel(make_wheel(tmp_path, "sneaked-in", "0.1", {"sneaked_in.py": ""}))
    bad = venv.doctor("--only", "environment.lock", "--lock", str(lock), "--format", "json")
    check = report(bad)["environment.lock"]
    assert bad.returncode == 1 and check["status"] == "fail"
    assert any(d.startswith("sneaked-in 0.1 is not in the lock") for d in check["details"])
    assert "pip install --require-hashes -r" in check["fix"]


def test_a_lock_with_a_range_cannot_be_checked(venv, tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("litellm>=1.60\n")
    proc = venv.doctor("--only", "environment.lock", "--lock", str(lock))
    assert proc.returncode == 2 and "not pinned with ==" in proc.stderr


def test_litellm_imports_offline():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "jupyter_securellm", "doctor", "--only", "environment.litellm-offline",
                           "--format", "json"], capture_output=True, text=True, timeout=600)
    check = report(proc)["environment.litellm-offline"]
    assert check["status"] == "pass", check


def test_a_litellm_that_reaches_for_the_network_at_import_fails(tmp_path):
    """A stand-in litellm first on the path that fetches something at import, as litellm does without
    the local price map; the probe refuses the connection and names the address."""
    import os
    import subprocess
    import sys

    pkg = tmp_path / "shadow" / "litellm"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError:\n    pass\n"
        "model_cost = {'x': 1}\n")
    (tmp_path / "shadow" / "litellm-1.90.0.dist-info").mkdir()
    (tmp_path / "shadow" / "litellm-1.90.0.dist-info" / "METADATA").write_text("Name: litellm\nVersion: 1.90.0\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "jupyter_securellm", "doctor", "--only", "environment.litellm-offline",
                           "--format", "json"], capture_output=True, text=True, timeout=600, env=env)
    check = report(proc)["environment.litellm-offline"]
    assert proc.returncode == 1 and check["status"] == "fail"
    assert check["details"] == ["127.0.0.1"]
