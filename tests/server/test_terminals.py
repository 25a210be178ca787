"""Terminals get the same sanitized environment as kernels (trust tier 2).

A real Jupyter server with jupyter_server_terminals, a real terminal opened through
`POST /api/terminals`, driven over its websocket (terminado's JSON protocol): `env` must not
show a deny-listed variable, a provider-shaped value under a harmless name, nor a deny-listed
name passed in the request's own `extra_env`; a harmless variable must survive.
"""
from __future__ import annotations

import asyncio
import json
import re
import secrets

import pytest

from jupyter_server_terminals.terminalmanager import TerminalManager

from jupyter_securellm.detect import fake_secret
from jupyter_securellm.server import terminals
from jupyter_securellm.server.kernels import DEFAULT_ENV_DENY_PATTERNS, EnvSanitizer

MARK = "SECURELLM-END-" + secrets.token_hex(4)


@pytest.fixture
def server_env(monkeypatch):
    """Secrets in the *server's* environment, set before the server starts."""
    env = {
        "OPENAI_API_KEY": fake_secret("openai-api-key"),          # name matches *_API_KEY
        "SECURELLM_INNOCENT_NAME": fake_secret("github-token"),     # provider-shaped value, harmless name
        "SECURELLM_HARMLESS": "harmless-" + secrets.token_hex(6),  # must survive
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


class AdminTerminalManager(TerminalManager):
    """Stands for an admin's own `c.TerminalsExtensionApp.terminal_manager_class`."""


@pytest.fixture
def admin_terminal_class():
    return None  # parametrized by the test that checks an admin's class is kept


@pytest.fixture
def securellm_enabled():
    return True  # parametrized off by the test that installs the hook on a running manager


@pytest.fixture
def jp_server_config(securellm_config, server_env, admin_terminal_class, securellm_enabled):
    cfg = {
        "ServerApp": {"jpserver_extensions": {"jupyter_securellm": securellm_enabled,
                                              "jupyter_server_terminals": True},
                      "allow_unauthenticated_access": False, "terminals_enabled": True},
        "SecureLLM": securellm_config,
    }
    if admin_terminal_class is not None:
        cfg["TerminalsExtensionApp"] = {"terminal_manager_class": admin_terminal_class}
    return cfg


async def _run_in_terminal(jp_ws_fetch, name: str, command: str, timeout: float = 30) -> str:
    ws = await jp_ws_fetch("terminals", "websocket", name)
    out = []
    try:
        # The marker is split in the command line, so only the command's output contains it whole.
        half = len(MARK) // 2
        ws.write_message(json.dumps(["stdin", f"{command}; echo {MARK[:half]}''{MARK[half:]}\r"]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while MARK not in "".join(out):
            left = deadline - loop.time()
            assert left > 0, "terminal did not answer in time: " + "".join(out)[-500:]
            msg = await asyncio.wait_for(ws.read_message(), left)
            assert msg is not None, "terminal websocket closed: " + "".join(out)[-500:]
            kind, *payload = json.loads(msg)
            if kind == "stdout":
                out.append(payload[0])
    finally:
        ws.close()
    return "".join(out)


async def test_terminal_env_is_sanitized(jp_serverapp, jp_fetch, jp_ws_fetch, server_env, server_log):
    tm = jp_serverapp.web_app.settings["terminal_manager"]
    assert isinstance(tm, terminals.SecureLLMTerminalManagerMixin)

    request_secret = fake_secret("huggingface-token")
    r = await jp_fetch("api", "terminals", method="POST",
                       body=json.dumps({"extra_env": {"HF_TOKEN": request_secret, "SECURELLM_REQ_OK": "yes-1"}}))
    name = json.loads(r.body)["name"]
    try:
        out = await _run_in_terminal(jp_ws_fetch, name, "env")
    finally:
        await jp_fetch("api", "terminals", name, method="DELETE")

    # the harmless ones are there (so `env` really ran and printed the environment)
    assert "SECURELLM_HARMLESS=" + server_env["SECURELLM_HARMLESS"] in out
    assert "SECURELLM_REQ_OK=yes-1" in out
    assert "JUPYTER_SERVER_ROOT=" in out
    # deny-listed names and secret values are gone
    # (failure messages name the variable, never print the output: it would hold the value)
    secret_values = {"OPENAI_API_KEY": server_env["OPENAI_API_KEY"], "HF_TOKEN": request_secret,
                     "SECURELLM_INNOCENT_NAME": server_env["SECURELLM_INNOCENT_NAME"]}
    log = server_log()
    leaked_names = [k for k in secret_values if k + "=" in out]
    leaked_values = [k for k, v in secret_values.items() if v in out]
    logged_values = [k for k, v in secret_values.items() if v in log]
    assert leaked_names == [] and leaked_values == [] and logged_values == []
    # the server says what it removed (names only)
    m = re.search(r"SecureLLM: new terminal; removed \d+ env variable\(s\): ([^\n]*)", server_log())
    assert m, "no sanitizer log line for the terminal"
    assert {"OPENAI_API_KEY", "SECURELLM_INNOCENT_NAME", "HF_TOKEN"} <= set(m.group(1).split(", "))
    assert "SECURELLM_HARMLESS" not in m.group(1)


async def _env_of_new_terminal(jp_fetch, jp_ws_fetch) -> str:
    r = await jp_fetch("api", "terminals", method="POST", body="{}")
    name = json.loads(r.body)["name"]
    try:
        return await _run_in_terminal(jp_ws_fetch, name, "env")
    finally:
        await jp_fetch("api", "terminals", name, method="DELETE")


@pytest.mark.parametrize("admin_terminal_class", [AdminTerminalManager])
async def test_admin_terminal_manager_class_is_kept(jp_serverapp, jp_fetch, jp_ws_fetch, server_env):
    tm = jp_serverapp.web_app.settings["terminal_manager"]
    assert isinstance(tm, AdminTerminalManager) and isinstance(tm, terminals.SecureLLMTerminalManagerMixin)
    out = await _env_of_new_terminal(jp_fetch, jp_ws_fetch)
    assert "SECURELLM_HARMLESS=" + server_env["SECURELLM_HARMLESS"] in out
    leaked = "OPENAI_API_KEY=" in out
    assert not leaked


@pytest.mark.parametrize("securellm_enabled", [False])
async def test_install_on_a_running_terminal_manager(jp_serverapp, jp_fetch, jp_ws_fetch, server_env):
    """Other load order: the manager exists before `install` runs; the live instance is switched."""
    tm = jp_serverapp.web_app.settings["terminal_manager"]
    assert not isinstance(tm, terminals.SecureLLMTerminalManagerMixin)
    before = await _env_of_new_terminal(jp_fetch, jp_ws_fetch)
    inherited = "OPENAI_API_KEY=" in before  # (a bare bool: a failure must not print the output)
    assert inherited  # control: without the hook the terminal inherits the server's key

    cls = terminals.install(jp_serverapp, EnvSanitizer(DEFAULT_ENV_DENY_PATTERNS))
    assert cls is not None and isinstance(tm, terminals.SecureLLMTerminalManagerMixin)
    out = await _env_of_new_terminal(jp_fetch, jp_ws_fetch)
    assert "SECURELLM_HARMLESS=" + server_env["SECURELLM_HARMLESS"] in out
    leaked = "OPENAI_API_KEY=" in out
    assert not leaked
