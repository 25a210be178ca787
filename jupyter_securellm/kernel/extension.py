"""`%load_ext jupyter_securellm`: install the magics, env guard and output redaction; undo on unload.

Load must be fast and quiet: no network, no litellm/hvac, no engine compile until first needed.
Every hook installed here is recorded so `%unload_ext` removes exactly what load added.
"""
from __future__ import annotations

import sys

from . import backend

_STATE: dict[int, "_Loaded"] = {}


class SecretInCellError(Exception):
    """Raised before a cell runs when it contains a secret literal and source_guard is 'block'."""

    def _render_traceback_(self):
        return [f"SecureLLM (source guard): {self}"]


def _findings_summary(findings) -> str:
    return ", ".join(f"{f.rule_id} (fingerprint {f.fingerprint[:12]})" for f in findings[:5])


class _Loaded:
    def __init__(self, shell):
        from .envguard import DEFAULT_DENY, EnvGuard  # DEFAULT_DENY is the protocol's one list
        from .magics import SecureLLMMagics
        from .redaction import Hooks

        self.shell = shell
        self.magics = SecureLLMMagics(shell=shell)
        self.hooks = Hooks(shell)
        deny = self.magics.env_deny_patterns or DEFAULT_DENY
        self.env = EnvGuard(deny=deny, mode_getter=lambda: self.magics.env_guard)
        self._undo = []

    def install(self):
        shell = self.shell
        self.env.scrub()
        self.env.install()
        self._undo.append(self.env.uninstall)
        self.hooks.install_all()
        self._undo.append(self.hooks.uninstall)
        self._install_source_guard()
        self._install_history_guard()
        shell.register_magics(self.magics)
        self._undo.append(self._unregister_magics)
        shell.events.register("post_run_cell", self.magics.remember_error)  # for %llm error
        self._undo.append(lambda: shell.events.unregister("post_run_cell", self.magics.remember_error))

    def uninstall(self):
        while self._undo:
            try:
                self._undo.pop()()
            except Exception:  # pragma: no cover - unload is best effort
                pass

    def _unregister_magics(self):
        mm = self.shell.magics_manager
        for kind in ("line", "cell"):
            table = mm.magics[kind]
            if getattr(table.get("llm"), "__self__", None) is self.magics:
                del table["llm"]
        mm.registry.pop(type(self.magics).__name__, None)
        if self.magics in getattr(self.shell, "configurables", []):
            self.shell.configurables.remove(self.magics)

    # -- cell sources
    def _install_source_guard(self):
        shell = self.shell
        orig = shell.transform_cell
        magics = self.magics

        def transform_cell(raw_cell):
            mode = magics.source_guard
            if mode != "off" and raw_cell:
                from .redaction import get_redactor

                findings = get_redactor().scanner.scan(raw_cell)
                if findings:
                    what = _findings_summary(findings)
                    if mode == "block":
                        raise SecretInCellError(
                            f"This cell was not run: its source contains a secret ({what}). Keep secrets in Vault "
                            "and use secrets.get(path, key); to run it anyway: %config SecureLLMMagics.source_guard = 'warn'.")
                    print(f"SecureLLM warning: this cell's source contains a secret ({what}). It will run, but the "
                          "literal is kept out of the history database; move it to Vault and use secrets.get(path, key).",
                          file=sys.stderr)
            return orig(raw_cell)

        self._patch(shell, "transform_cell", transform_cell)

    def _install_history_guard(self):
        hm = getattr(self.shell, "history_manager", None)
        if hm is None:
            return
        orig = hm.store_inputs

        def store_inputs(line_num, source, source_raw=None):
            from .redaction import redact

            if source_raw is None:
                source_raw = source
            return orig(line_num, redact(source), redact(source_raw))

        self._patch(hm, "store_inputs", store_inputs)

    def _patch(self, obj, name, value):
        had = name in obj.__dict__
        old = obj.__dict__.get(name)
        setattr(obj, name, value)

        def undo():
            if had:
                setattr(obj, name, old)
            elif name in obj.__dict__:
                delattr(obj, name)

        self._undo.append(undo)


def load_ipython_extension(shell):
    if id(shell) in _STATE:
        return
    loaded = _Loaded(shell)
    try:
        loaded.install()
    except BaseException:
        loaded.uninstall()
        raise
    _STATE[id(shell)] = loaded
    backend.set_active_magics(loaded.magics)


def unload_ipython_extension(shell):
    loaded = _STATE.pop(id(shell), None)
    if loaded is None:
        return
    loaded.uninstall()
    if backend.active_magics() is loaded.magics:
        backend.set_active_magics(None)


def is_loaded(shell) -> bool:
    return id(shell) in _STATE
