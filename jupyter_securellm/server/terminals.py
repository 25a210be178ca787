"""Sanitized environments for Jupyter terminals (trust tier 2).

Why: a terminal opened from JupyterLab runs as the server's user with the server's
environment, so it is as powerful as a kernel. Without this, a provider key or a Vault
token that sits in the server's environment would be one `env` away, even though kernels
never see it. Terminals therefore get the same `kernels.EnvSanitizer` as kernels (names
matching `c.SecureLLM.env_deny_patterns`, values that are known secrets or provider-shaped
keys). They get no broker token: a terminal is not a kernel.

Why this hook: terminado builds every terminal's environment in
`TermManagerBase.make_term_env` (server env + manager `extra_env` + the request's
`extra_env`), and jupyter_server_terminals picks the manager class from the configurable
`TerminalsExtensionApp.terminal_manager_class`. We put a mixin in front of whatever class is
configured there (so an admin's class and its config section are kept) and sanitize the
*final* environment. Extensions load in alphabetical order, so `jupyter_securellm` runs
before `jupyter_server_terminals` creates its manager; if the manager already exists, the
running instance is switched to the mixed-in class instead.
"""
from __future__ import annotations

from .kernels import EnvSanitizer

TERMINALS_EXTENSION = "jupyter_server_terminals"


class SecureLLMTerminalManagerMixin:
    """Mixed in front of the configured TerminalManager class; see the module docstring."""

    _securellm_sanitizer: EnvSanitizer | None = None
    _securellm_log = None

    def make_term_env(self, *args, **kwargs):
        env = super().make_term_env(*args, **kwargs)
        sanitizer = type(self)._securellm_sanitizer
        if sanitizer is None:
            return env
        clean, removed = sanitizer.sanitize(env)
        log = type(self)._securellm_log
        if log is not None:
            log.info("SecureLLM: new terminal; removed %d env variable(s): %s",
                     len(removed), ", ".join(removed) or "none")
        return clean


def _mixed(base: type, sanitizer: EnvSanitizer, log) -> type:
    if issubclass(base, SecureLLMTerminalManagerMixin):
        base._securellm_sanitizer = sanitizer
        base._securellm_log = log
        return base
    return type(f"SecureLLM{base.__name__}", (SecureLLMTerminalManagerMixin, base),
                {"_securellm_sanitizer": sanitizer, "_securellm_log": log,
                 "__module__": __name__, "__doc__": base.__doc__})


def _terminals_apps(serverapp):
    manager = getattr(serverapp, "extension_manager", None)
    if manager is None:
        return []
    return list(manager.extension_apps.get(TERMINALS_EXTENSION, ()))


def install(serverapp, sanitizer: EnvSanitizer, log=None) -> type | None:
    """Make every terminal of `serverapp` start with a sanitized environment.

    Returns the mixed-in manager class, or None when this server has no terminals
    (disabled, or jupyter_server_terminals not installed/enabled).
    """
    apps = _terminals_apps(serverapp)
    if not apps or not getattr(serverapp, "terminals_enabled", False):
        return None
    cls = None
    for app in apps:
        cls = _mixed(app.terminal_manager_class, sanitizer, log)
        app.terminal_manager_class = cls
        tm = getattr(app, "terminal_manager", None)  # already created: switch the live instance
        if tm is not None and not isinstance(tm, SecureLLMTerminalManagerMixin):
            tm.__class__ = _mixed(type(tm), sanitizer, log)
    if log is not None:
        log.info("SecureLLM: terminals start with a sanitized environment (env_deny_patterns).")
    return cls


__all__ = ["SecureLLMTerminalManagerMixin", "install"]
