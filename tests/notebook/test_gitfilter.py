"""The git filter with real `git` in a temporary repository (trust tier 1: secrets never reach git).

`git add` stores the scrubbed blob while the working copy keeps its content, `git diff` shows the
scrubbed view, `status` reports, `uninstall` removes everything `install` added.
"""
import json
import os
import shutil
import subprocess

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def git_env(kit, tmp_path):
    """An environment with a private HOME (so --global never touches the real ~/.gitconfig)."""
    home = tmp_path / "home"
    home.mkdir()
    env = kit.cli_env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1",
                      GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
                      GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    return env


@pytest.fixture
def repo(tmp_path, git_env):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, git_env, "init", "-q", "-b", "main")
    return root


def git(cwd, env, *args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc


def _notebook(kit, seed):
    key, tok = kit.secret("openai-api-key", seed), kit.secret("github-token", seed)
    nb = new_notebook()
    nb.cells = [new_code_cell(f'client = OpenAI(api_key="{key}")\n', execution_count=1,
                              outputs=[new_output("stream", text=f"using {tok}\n")])]
    return nbformat.writes(nb) + "\n", [key, tok]


def test_add_commit_diff_status_uninstall(kit, repo, git_env):
    proc = kit.run_cli("install", cwd=repo, env=git_env)
    assert proc.returncode == 0, proc.stderr
    clean = git(repo, git_env, "config", "filter.securellm.clean").stdout.strip()
    assert os.path.isabs(clean.split()[0].strip("'\"")) and "--stdin-filter" in clean
    assert git(repo, git_env, "config", "filter.securellm.required").stdout.strip() == "true"
    assert "filter=securellm" in (repo / ".git" / "info" / "attributes").read_text()
    assert kit.run_cli("status", cwd=repo, env=git_env).returncode == 0
    # installing twice adds nothing
    kit.run_cli("install", cwd=repo, env=git_env)
    assert (repo / ".git" / "info" / "attributes").read_text().count("filter=securellm") == 1

    text, keys = _notebook(kit, 21)
    (repo / "analysis.ipynb").write_text(text, encoding="utf-8")
    git(repo, git_env, "add", "analysis.ipynb")
    git(repo, git_env, "commit", "-q", "-m", "add notebook")

    staged = git(repo, git_env, "show", ":analysis.ipynb").stdout
    committed = git(repo, git_env, "show", "HEAD:analysis.ipynb").stdout
    for blob in (staged, committed):
        assert all(k not in blob for k in keys)
        assert "[REDACTED:openai-api-key]" in blob and "[REDACTED:github-token]" in blob
        nbformat.reads(blob, as_version=4)
    assert (repo / "analysis.ipynb").read_text(encoding="utf-8") == text  # working copy untouched
    # nothing left to commit: the clean filter of the working copy equals the stored blob
    assert git(repo, git_env, "status", "--porcelain").stdout == ""

    # a new key in the working copy: the diff shows the scrubbed view only
    nb = nbformat.reads(text, as_version=4)
    new_key = kit.secret("anthropic-api-key", 22)
    nb.cells[0].source += f'backup = "{new_key}"\n'
    (repo / "analysis.ipynb").write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    diff = git(repo, git_env, "diff").stdout
    assert "+" in diff and "[REDACTED:anthropic-api-key]" in diff
    assert new_key not in diff and all(k not in diff for k in keys)
    assert git(repo, git_env, "status", "--porcelain").stdout.strip() == "M analysis.ipynb"

    # a full history never holds a key
    git(repo, git_env, "commit", "-q", "-am", "more")
    log = git(repo, git_env, "log", "-p", "--all").stdout
    assert new_key not in log and all(k not in log for k in keys)

    proc = kit.run_cli("uninstall", cwd=repo, env=git_env)
    assert proc.returncode == 0, proc.stderr
    assert git(repo, git_env, "config", "--get-regexp", "securellm", check=False).stdout == ""
    assert "securellm" not in (repo / ".git" / "info" / "attributes").read_text()
    status = kit.run_cli("status", cwd=repo, env=git_env)
    assert status.returncode == 1 and b"NOT installed" in status.stdout


def test_filter_failure_refuses_to_stage(kit, repo, git_env):
    """required=true: a notebook the filter cannot read is not stored raw."""
    kit.run_cli("install", cwd=repo, env=git_env)
    key = kit.secret("github-token", 23)
    (repo / "broken.ipynb").write_text('{"cells": [{"source": "' + key + '"', encoding="utf-8")
    proc = git(repo, git_env, "add", "broken.ipynb", check=False)
    assert proc.returncode != 0 and "not valid JSON" in proc.stderr and key not in proc.stderr
    assert git(repo, git_env, "ls-files", "--stage").stdout == ""


def test_attributes_file_option_and_patterns(kit, repo, git_env):
    proc = kit.run_cli("install", "--attributes", ".gitattributes", "--pattern", "*.ipynb", "--pattern", "*.env",
                       cwd=repo, env=git_env)
    assert proc.returncode == 0, proc.stderr
    attrs = (repo / ".gitattributes").read_text()
    assert "*.ipynb filter=securellm diff=securellm" in attrs and "*.env filter=securellm diff=securellm" in attrs
    key = kit.secret("groq-api-key", 24)
    (repo / "prod.env").write_text(f"GROQ_API_KEY={key}\n")
    git(repo, git_env, "add", "prod.env", ".gitattributes")
    assert git(repo, git_env, "show", ":prod.env").stdout == "GROQ_API_KEY=[REDACTED:groq-api-key]\n"
    kit.run_cli("uninstall", "--attributes", ".gitattributes", cwd=repo, env=git_env)
    assert "securellm" not in (repo / ".gitattributes").read_text()


def test_global_install(kit, repo, git_env, tmp_path):
    proc = kit.run_cli("install", "--global", cwd=repo, env=git_env)
    assert proc.returncode == 0, proc.stderr
    gitconfig = (tmp_path / "home" / ".gitconfig").read_text()
    assert "[filter \"securellm\"]" in gitconfig and "required = true" in gitconfig
    attrs = tmp_path / "home" / ".config" / "git" / "attributes"
    assert "*.ipynb filter=securellm" in attrs.read_text()
    assert kit.run_cli("status", "--global", cwd=repo, env=git_env).returncode == 0

    text, keys = _notebook(kit, 25)
    (repo / "n.ipynb").write_text(text, encoding="utf-8")
    git(repo, git_env, "add", "n.ipynb")
    assert all(k not in git(repo, git_env, "show", ":n.ipynb").stdout for k in keys)

    kit.run_cli("uninstall", "--global", cwd=repo, env=git_env)
    assert "securellm" not in (tmp_path / "home" / ".gitconfig").read_text()
    assert "securellm" not in attrs.read_text()


def test_install_outside_a_repository_is_an_error(kit, tmp_path, git_env):
    outside = tmp_path / "plain"
    outside.mkdir()
    proc = kit.run_cli("install", cwd=outside, env={**git_env, "GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert proc.returncode == 2 and b"not a git repository" in proc.stderr


def test_clean_filter_is_byte_stable_for_clean_notebooks(kit, repo, git_env):
    kit.run_cli("install", cwd=repo, env=git_env)
    nb = new_notebook()
    nb.cells = [new_code_cell("print('caf\u00e9')\n")]
    text = json.dumps(nbformat.v4.nbjson.split_lines(nb), indent=2, ensure_ascii=True)  # not nbformat's layout
    (repo / "clean.ipynb").write_text(text, encoding="utf-8")
    git(repo, git_env, "add", "clean.ipynb")
    assert git(repo, git_env, "show", ":clean.ipynb").stdout == text


def test_linked_worktree_uses_the_common_attributes(kit, repo, git_env, tmp_path):
    (repo / "README").write_text("x\n")
    git(repo, git_env, "add", "README")
    git(repo, git_env, "commit", "-q", "-m", "init")
    wt = tmp_path / "wt"
    git(repo, git_env, "worktree", "add", "-q", str(wt))
    assert kit.run_cli("install", cwd=wt, env=git_env).returncode == 0
    assert "filter=securellm" in (repo / ".git" / "info" / "attributes").read_text()
    text, keys = _notebook(kit, 26)
    (wt / "w.ipynb").write_text(text, encoding="utf-8")
    git(wt, git_env, "add", "w.ipynb")
    assert all(k not in git(wt, git_env, "show", ":w.ipynb").stdout for k in keys)
    assert kit.run_cli("status", cwd=wt, env=git_env).returncode == 0


def test_process_filter_is_used_and_clean_command_still_works(kit, repo, git_env):
    kit.run_cli("install", cwd=repo, env=git_env)
    process = git(repo, git_env, "config", "filter.securellm.process").stdout
    assert "--git-filter-process" in process
    files = {}
    for i in range(5):
        text, keys = _notebook(kit, 50 + i)
        (repo / f"n{i}.ipynb").write_text(text, encoding="utf-8")
        files[f"n{i}.ipynb"] = keys
    trace = repo.parent / "trace.txt"
    git(repo, {**git_env, "GIT_TRACE": str(trace)}, "add", ".")
    # one filter process served all five notebooks
    assert trace.read_text().count("--git-filter-process") == 1
    for name, keys in files.items():
        blob = git(repo, git_env, "show", f":{name}").stdout
        assert all(k not in blob for k in keys) and "[REDACTED:openai-api-key]" in blob
    # without process (an old git, another tool) the per-file clean command does the same
    git(repo, git_env, "config", "--unset", "filter.securellm.process")
    text, keys = _notebook(kit, 60)
    (repo / "old.ipynb").write_text(text, encoding="utf-8")
    git(repo, git_env, "add", "old.ipynb")
    assert all(k not in git(repo, git_env, "show", ":old.ipynb").stdout for k in keys)


def test_filter_protocol_in_memory(kit):
    """The protocol exchange as git speaks it, including a refused file between two good ones."""
    import io

    from jupyter_securellm.notebook import gitprocess as gp

    key = kit.secret("github-token", 61)
    inp = io.BytesIO()
    gp.write_text(inp, "git-filter-client", "version=2")
    inp.write(gp.FLUSH)
    gp.write_text(inp, "capability=clean", "capability=smudge", "capability=delay")
    inp.write(gp.FLUSH)
    for name, content in (("a.env", f"K={key}\n".encode()), ("bad.ipynb", b"{"), ("big.txt", b"x" * 200_000)):
        gp.write_text(inp, "command=clean", f"pathname={name}")
        inp.write(gp.FLUSH)
        gp.write_content(inp, content)
    inp.seek(0)
    proc = kit.run_cli("scrub", "--git-filter-process", input=inp.getvalue())
    assert proc.returncode == 0, proc.stderr
    out = io.BytesIO(proc.stdout)
    assert gp.read_text_list(out) == ["git-filter-server", "version=2"]
    assert gp.read_text_list(out) == ["capability=clean", "capability=smudge"]
    assert gp.read_text_list(out) == ["status=success"]
    assert gp.read_content(out) == b"K=[REDACTED:github-token]\n" and gp.read_text_list(out) == []
    assert gp.read_text_list(out) == ["status=error"]
    assert gp.read_text_list(out) == ["status=success"]
    assert gp.read_content(out) == b"x" * 200_000 and gp.read_text_list(out) == []
    assert out.read() == b""
    assert b"bad.ipynb: not valid JSON" in proc.stderr and key.encode() not in proc.stdout + proc.stderr
