"""Per-kernel capability tokens and sanitized kernel environments.

Why a token per kernel: code in a kernel can read `jpserver-*.json` and reuse the server
token, but the broker's token is bound to one kernel id and user, stored only as a hash,
and dies with the kernel (shutdown or restart), so a leaked one is short-lived and scoped.

Why a kernel-manager mixin: every launch, including restarts and the restarter's automatic
restarts, goes through `KernelManager._async_pre_start_kernel`, after the provisioner has
built the final environment (server env + kernelspec env). Hooking there (through the
MultiKernelManager's `kernel_manager_factory`, which keeps the configured class) is the one
place that sees the real launch env and every (re)start, without replacing the admin's
`kernel_manager_class`.
"""
from __future__ import annotations

import codecs
import fnmatch
import hashlib
import hmac
import os
import re
import secrets
import select
import subprocess
import threading
from dataclasses import dataclass

from ..protocol import ENV_DENY_PATTERNS, TOKEN_ENV, TOKEN_HEADER, URL_ENV

#: The protocol's one deny list (the kernel env guard uses the same; see jupyter_securellm/protocol.py).
DEFAULT_ENV_DENY_PATTERNS = list(ENV_DENY_PATTERNS)


@dataclass(frozen=True, slots=True)
class KernelPrincipal:
    """Who a valid kernel token speaks for."""

    kernel_id: str
    user: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KernelTokens:
    """Issues, checks and revokes kernel capability tokens; only SHA-256 digests are kept."""

    def __init__(self, is_live=None):
        self._by_digest: dict[str, KernelPrincipal] = {}
        self._by_kernel: dict[str, str] = {}
        self._lock = threading.Lock()
        # is_live(kernel_id) -> bool: a token also dies when its kernel is gone, even if a
        # shutdown path skipped revocation (e.g. a kernel that died for good).
        self._is_live = is_live
        # digests of revoked tokens (bounded): a later use means a copied token (the stale-token alert)
        self._revoked: dict[str, KernelPrincipal] = {}

    REVOKED_KEPT = 10000

    def revoked(self, token: str | None) -> KernelPrincipal | None:
        """The principal a revoked token belonged to, if it is one we issued; else None."""
        if not token or len(token) > 256:
            return None
        with self._lock:
            return self._revoked.get(_digest(token))

    def mint(self, kernel_id: str, user: str) -> str:
        token = secrets.token_urlsafe(32)
        digest = _digest(token)
        with self._lock:
            old = self._by_kernel.pop(kernel_id, None)
            if old:
                self._by_digest.pop(old, None)
            self._by_digest[digest] = KernelPrincipal(kernel_id, user)
            self._by_kernel[kernel_id] = digest
        return token

    def revoke(self, kernel_id: str) -> bool:
        with self._lock:
            digest = self._by_kernel.pop(kernel_id, None)
            if digest:
                principal = self._by_digest.pop(digest, None)
                if principal is not None:
                    self._revoked[digest] = principal
                    while len(self._revoked) > self.REVOKED_KEPT:
                        self._revoked.pop(next(iter(self._revoked)))
            return digest is not None

    def check(self, token: str | None) -> KernelPrincipal | None:
        if not token or len(token) > 256:
            return None
        digest = _digest(token)
        with self._lock:
            principal = self._by_digest.get(digest)
            if principal is None or not hmac.compare_digest(self._by_kernel.get(principal.kernel_id, ""), digest):
                return None
        if self._is_live is not None and not self._is_live(principal.kernel_id):
            self.revoke(principal.kernel_id)
            return None
        return principal

    def __len__(self) -> int:
        return len(self._by_digest)


class EnvSanitizer:
    """Drops variables whose *name* matches a deny glob or whose *value* is a known secret."""

    def __init__(self, patterns, value_check=None):
        self.patterns = [p.upper() for p in patterns]
        self._re = re.compile("|".join(fnmatch.translate(p) for p in self.patterns)) if self.patterns else None
        self._value_check = value_check  # value -> bool (True: it is a secret)

    def denied(self, name: str, value: str = "") -> bool:
        if self._re is not None and self._re.match(name.upper()):
            return True
        return bool(value and self._value_check is not None and self._value_check(value))

    def sanitize(self, env: dict) -> tuple[dict, list[str]]:
        clean, removed = {}, []
        for k, v in env.items():
            if self.denied(k, v if isinstance(v, str) else ""):
                removed.append(k)
            else:
                clean[k] = v
        return clean, sorted(removed)


class KernelLaunchService:
    """What the kernel-manager mixin calls: sanitize the env, then add URL + fresh token."""

    def __init__(self, tokens: KernelTokens, sanitizer: EnvSanitizer, url_getter, user: str, log=None):
        self.tokens = tokens
        self.sanitizer = sanitizer
        self.url_getter = url_getter
        self.user = user
        self.log = log
        self.on_token = None  # callable(token): e.g. register with the redactor
        self.output_relay: KernelOutputRelay | None = None  # redacts the kernel's stdout/stderr

    def launch_env(self, kernel_id: str, env: dict) -> dict:
        clean, removed = self.sanitizer.sanitize(env)
        token = self.tokens.mint(kernel_id, self.user)
        if self.on_token is not None:
            self.on_token(token)
        clean[URL_ENV] = self.url_getter()
        clean[TOKEN_ENV] = token
        if self.log is not None:
            self.log.info(
                "SecureLLM: kernel %s launched with a fresh broker token; removed %d env variable(s): %s",
                kernel_id, len(removed), ", ".join(removed) or "none",
            )
        return clean

    def kernel_gone(self, kernel_id: str, restart: bool) -> None:
        if self.tokens.revoke(kernel_id) and self.log is not None:
            self.log.info("SecureLLM: revoked the broker token of kernel %s (%s)", kernel_id,
                          "restart" if restart else "shutdown")


class KernelOutputRelay:
    """Copies what a kernel process writes to its stdout/stderr to the server's own fd 1/2, redacted.

    Why in the server, at launch: the kernel's inherited descriptors become pipes that the server reads.
    Everything written to them passes the server's redactor (built-in rules and every value read from
    Vault, so `secrets.get` values too) before it reaches the server's streams and log: ipykernel's echo of
    fd-level output, `sys.__stdout__`, child processes, C code, and anything written before
    `%load_ext` or by code that undoes the kernel's hooks. A kernel cannot route around a pipe it was
    given at birth; a hook inside the kernel could be undone by the code it guards.

    Output goes out in whole lines (the server log is read line by line, and the kernel's stdout and
    stderr land in the same log). Held text (a secret that might still be arriving, a line without its
    newline) is released after `idle` seconds without input, so an ordinary log line is never stuck.
    """

    def __init__(self, redactor, idle: float = 1.0):
        self.redactor = redactor
        self.idle = idle

    def attach(self, kernel_id: str, proc) -> list[threading.Thread]:
        threads = []
        for src, dest in ((getattr(proc, "stdout", None), 1), (getattr(proc, "stderr", None), 2)):
            if src is None:
                continue
            rfd = os.dup(src.fileno())  # ours: jupyter_client closes its copy when the kernel exits
            t = threading.Thread(target=self._pump, args=(rfd, dest), daemon=True,
                                 name=f"securellm-kernel-output-{dest}-{kernel_id[:8]}")
            t.start()
            threads.append(t)
        return threads

    @staticmethod
    def _write(fd: int, text: str) -> None:
        data = text.encode("utf-8", "surrogateescape")
        while data:
            try:
                n = os.write(fd, data)
            except InterruptedError:  # pragma: no cover
                continue
            except OSError:  # the server's own stream is gone (closed terminal): drop, never block
                return
            data = data[n:]

    def _pump(self, rfd: int, dest: int) -> None:
        sr = self.redactor.stream()
        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        line = ""  # redacted text after the last newline: logs are read line by line, so lines go out whole
        try:
            while True:
                waiting = sr.pending or line
                ready, _, _ = select.select([rfd], [], [], self.idle if waiting else None)
                if not ready:  # quiet for a while: nothing more is coming soon, release what is held
                    self._write(dest, line + sr.flush())
                    line = ""
                    continue
                data = os.read(rfd, 65536)
                if not data:
                    break
                line += sr.feed(decoder.decode(data))
                cut = line.rfind("\n") + 1
                if cut:
                    self._write(dest, line[:cut])
                    line = line[cut:]
            self._write(dest, line + sr.feed(decoder.decode(b"", final=True)) + sr.flush())
        except Exception as exc:  # pragma: no cover - never take the server down, never pass text raw
            self._write(2, f"SecureLLM: kernel output relay failed ({type(exc).__name__}); the rest of this "
                           "kernel's stdout/stderr is withheld from the server log\n")
            try:  # keep reading (and dropping) so the kernel never blocks on a full pipe
                while os.read(rfd, 65536):
                    pass
            except OSError:
                pass
        finally:
            os.close(rfd)


class SecureLLMKernelManagerMixin:
    """Mixed in front of the configured KernelManager class; see the module docstring."""

    _securellm_launch: KernelLaunchService | None = None

    async def _async_pre_start_kernel(self, **kw):
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        svc = type(self)._securellm_launch
        if svc is not None:
            kw["env"] = svc.launch_env(self.kernel_id, dict(kw.get("env") or {}))
            if svc.output_relay is not None:
                for name in ("stdout", "stderr"):
                    if kw.get(name) is None:  # an admin's own redirection is kept
                        kw[name] = subprocess.PIPE
        return cmd, kw

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        await super()._async_launch_kernel(kernel_cmd, **kw)
        svc = type(self)._securellm_launch
        proc = getattr(self.provisioner, "process", None)
        if svc is not None and svc.output_relay is not None and proc is not None:
            svc.output_relay.attach(self.kernel_id or "", proc)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        svc = type(self)._securellm_launch
        if svc is not None and self.kernel_id:
            svc.kernel_gone(self.kernel_id, restart)
        await super()._async_cleanup_resources(restart=restart)


def install(multi_kernel_manager, service: KernelLaunchService) -> type:
    """Make `multi_kernel_manager` create kernel managers with the mixin in front.

    Keeps whatever `kernel_manager_class` the admin configured (and its config section,
    since traitlets applies config along the MRO) and the shared zmq context behaviour.
    """
    from traitlets.utils.importstring import import_item

    mkm = multi_kernel_manager
    base = import_item(mkm.kernel_manager_class)
    if issubclass(base, SecureLLMKernelManagerMixin):
        base._securellm_launch = service
        return base
    cls = type(f"SecureLLM{base.__name__}", (SecureLLMKernelManagerMixin, base), {"_securellm_launch": service})

    def create_kernel_manager(*args, **kwargs):
        if getattr(mkm, "shared_context", False):
            if mkm.context.closed:
                mkm.context = mkm._context_default()
            kwargs.setdefault("context", mkm.context)
        return cls(*args, **kwargs)

    mkm.kernel_manager_factory = create_kernel_manager
    return cls


def kernel_is_live(multi_kernel_manager):
    def is_live(kernel_id: str) -> bool:
        try:
            return kernel_id in multi_kernel_manager
        except Exception:  # pragma: no cover - defensive: never let a check crash auth
            return False

    return is_live


__all__ = [
    "DEFAULT_ENV_DENY_PATTERNS", "EnvSanitizer", "KernelLaunchService", "KernelOutputRelay", "KernelPrincipal", "KernelTokens",
    "SecureLLMKernelManagerMixin", "TOKEN_ENV", "TOKEN_HEADER", "URL_ENV", "install", "kernel_is_live",
]
