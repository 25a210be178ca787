"""The JupyterLab extension ships prebuilt: in the sdist, in the wheel built from that sdist on a machine
without Node.js, and after installing that wheel `jupyter labextension list` shows it enabled and OK
while `jupyter server extension list` still shows the server side."""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILT = REPO / "jupyter_securellm" / "labextension"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
pytestmark = pytest.mark.slow


def _run(argv, **kw):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)
    assert out.returncode == 0, f"{argv} failed:\n{out.stdout}\n{out.stderr}"
    return ANSI.sub("", out.stdout + out.stderr)


def test_sdist_and_wheel_ship_the_labextension_and_install_enables_it(tmp_path):
    assert (BUILT / "package.json").is_file(), "build the labextension first: make labextension"
    version = json.loads((BUILT / "package.json").read_text())["version"]
    py = sys.executable
    _run([py, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(REPO)])
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    root = names[0].split("/")[0]
    assert f"{root}/jupyter_securellm/labextension/package.json" in names
    assert any(n.startswith(f"{root}/jupyter_securellm/labextension/static/remoteEntry.") for n in names)
    assert f"{root}/labextension/src/index.ts" in names and f"{root}/labextension/yarn.lock" in names
    assert not any("/node_modules/" in n for n in names)

    # the wheel is built from the sdist with no Node.js on PATH: the prebuilt assets are used as they are
    venv_bin = str(Path(py).parent)
    no_node = {**os.environ, "PATH": f"{venv_bin}:/nonexistent"}
    _run([py, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel"),
          str(sdist)], env=no_node)
    (wheel,) = (tmp_path / "wheel").glob("*.whl")

    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip first uninstalls the running environment's own copy of the
    # package (the editable install), and every later test whose kernel imports it fails
    _run([py, "-m", "pip", "install", "--no-deps", "--no-compile", "--ignore-installed", "-q",
          "--prefix", str(prefix), str(wheel)])
    assert importlib.metadata.version("jupyter-securellm"), "the test environment lost its own install"
    share = prefix / "share" / "jupyter"
    installed = share / "labextensions" / "jupyter-securellm"
    assert (installed / "install.json").is_file() and (installed / "schemas" / "jupyter-securellm" / "plugin.json").is_file()
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    # `jupyter server extension list` reads the user, sys.prefix and system config dirs only: the
    # prefix's etc/jupyter stands in as the user dir
    env = {"PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": str(tmp_path), "JUPYTER_PATH": str(share),
           "JUPYTER_CONFIG_DIR": str(prefix / "etc" / "jupyter"), "PYTHONPATH": str(site)}
    jupyter = str(Path(py).with_name("jupyter"))
    text = _run([jupyter, "labextension", "list"], env=env)
    section = text.split(str(share / "labextensions"), 1)
    assert len(section) == 2, text
    ours = section[1].split("\n\n")[0]
    assert re.search(rf"jupyter-securellm v{re.escape(version)} enabled\s+OK \(python, jupyter-securellm\)", ours), text
    text = _run([jupyter, "server", "extension", "list"], env=env)
    assert re.search(r"jupyter_securellm\s+enabled", text) and re.search(r"jupyter_securellm \S+\s+OK", text), text
