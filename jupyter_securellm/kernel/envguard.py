"""Keep secrets out of os.environ, so neither output nor child processes can carry them.

At load: secret-like variables (by name glob, or because the detection engine recognises the
value) are removed from os.environ and their values registered with the redactor; the broker's
kernel token is moved into memory. Afterwards, putting a secret back (`os.environ[...] = key`,
`os.putenv`, `%env`, `%set_env`) is refused (mode "block") or allowed with a warning ("warn").
Removing from os.environ also unsets the process environment, so `!cmd`, `%%bash` and
`subprocess` children inherit nothing.
"""
from __future__ import annotations

import fnmatch
import os
import sys

from . import client

from ..protocol import ENV_ALLOW_PATTERNS, ENV_DENY_PATTERNS

DEFAULT_DENY = ENV_DENY_PATTERNS  # the protocol's one list, the same the server's launch sanitizer uses
DEFAULT_ALLOW = ENV_ALLOW_PATTERNS
# Values this short, or obviously flags, are not credentials even under a secret-like name.
_FLAG_VALUES = {"0", "1", "true", "false", "yes", "no", "on", "off", "none", "null", ""}


def wipe_initial_environ(names) -> int:
    """Blank the values of `names` in the environment block this process was started with.

    Why: unsetenv() only drops the pointer from `environ`; /proc/<pid>/environ keeps showing the
    block the kernel was exec'd with, and any process of the same uid (another kernel) can read it,
    e.g. to borrow this kernel's capability token. Linux only, best effort; returns how many
    entries were blanked. Removed entries are no longer referenced, so overwriting them is safe.
    """
    if not sys.platform.startswith("linux"):
        return 0
    wanted = tuple(n.encode("utf-8", "surrogateescape") + b"=" for n in names if n)
    if not wanted:
        return 0
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2:].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50, 51 of proc(5))
        count = 0
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            block = mem.read(end - start)
            pos = 0
            for entry in block.split(b"\0"):
                if entry.startswith(wanted) and not entry.endswith(b"=") and os.environb.get(entry.split(b"=", 1)[0]) is None:
                    eq = entry.index(b"=") + 1
                    mem.seek(start + pos + eq)
                    mem.write(b"\0" * (len(entry) - eq))
                    count += 1
                pos += len(entry) + 1
        return count
    except (OSError, ValueError, IndexError):
        return 0


class EnvGuardError(PermissionError):
    """Raised when code tries to put a secret into the environment (block mode)."""

    def _render_traceback_(self):
        return [f"SecureLLM (env guard): {self}"]


def _message(name: str, why: str) -> str:
    return (f"Refused to put a secret into the environment variable {name!r} ({why}): every child process "
            "would inherit it. Keep it in Vault and use `from jupyter_securellm import secrets; "
            "secrets.get(path, key)` (or %%llm for provider keys). To allow it anyway: "
            "%config SecureLLMMagics.env_guard = 'warn'.")


class EnvGuard:
    """The policy plus the installed guard; one per loaded extension."""

    def __init__(self, deny=DEFAULT_DENY, allow=DEFAULT_ALLOW, mode_getter=lambda: "block"):
        self.deny = tuple(deny)
        self.allow = tuple(allow)
        self._mode = mode_getter
        self._undo = []
        self.removed: list[str] = []

    # -- classification
    def name_is_secret(self, name: str) -> bool:
        upper = name.upper()
        if any(fnmatch.fnmatchcase(upper, pat.upper()) for pat in self.allow):
            return False
        return any(fnmatch.fnmatchcase(upper, pat.upper()) for pat in self.deny)

    def why_secret(self, name: str, value: str) -> str | None:
        """A short reason if (name, value) looks like a credential, else None. Never the value."""
        if not value or value.strip().lower() in _FLAG_VALUES:
            return None
        if name == client.TOKEN_ENV:
            return "the broker capability token"
        if self.name_is_secret(name) and len(value) >= 8:
            return "its name says it holds a credential"
        if len(value) >= 8:
            from .redaction import get_redactor

            findings = get_redactor().scanner.scan(value)
            if findings:
                return f"the value matches {findings[0].rule_id}"
        return None

    # -- at load
    def scrub(self) -> list[str]:
        """Remove secret-like variables now; return their names (never values)."""
        from .redaction import add_secret

        client.take_token_from_env()
        removed = []
        for name in list(os.environ):
            value = os.environ.get(name, "")
            if self.why_secret(name, value):
                add_secret(value)
                del os.environ[name]  # also unsetenv(): children no longer inherit it
                removed.append(name)
        if client._KERNEL_TOKEN:
            add_secret(client._KERNEL_TOKEN)
        wipe_initial_environ([*removed, client.TOKEN_ENV])
        self.removed.extend(removed)
        return removed

    # -- afterwards
    def check(self, name, value) -> None:
        if isinstance(name, bytes):
            name = name.decode("utf-8", "surrogateescape")
        if isinstance(value, bytes):
            value = value.decode("utf-8", "surrogateescape")
        if not isinstance(name, str) or not isinstance(value, str):
            return
        why = self.why_secret(name, value)
        if why is None:
            return
        from .redaction import add_secret

        add_secret(value)
        if self._mode() == "warn":
            print(f"SecureLLM warning: {_message(name, why)}", file=sys.stderr)
            return
        raise EnvGuardError(_message(name, why))

    def install(self) -> None:
        guard = self
        # os.environ[...] = v, environb, setdefault(), update(), %env and %set_env all end in the
        # module-global os.putenv, so guarding it guards them all.
        orig_putenv = os.putenv

        def putenv(name, value):
            guard.check(name, value)
            return orig_putenv(name, value)

        os.putenv = putenv
        self._undo.append(lambda: setattr(os, "putenv", orig_putenv))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()
