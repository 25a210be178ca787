"""Vault/OpenBao access for the broker: auth, token renewal, a KV v2 secret cache.

Why this shape:
- hvac is synchronous. ``VaultClient`` is meant to be called from a thread pool (never from the
  tornado event loop), so it is thread-safe: one lock serialises Vault I/O, cache hits don't take it.
- Fail closed. A cached value is served only until ``secret_cache_ttl`` runs out; after that a
  Vault that is down or sealed raises ``VaultUnavailable``/``VaultSealed``; stale values are never used.
- No secret in any message. Error texts are our own sentences naming Vault, the path and what to
  do; hvac's text is reduced to Vault's ``errors`` list with every known token, secret id, JWT and
  cached value scrubbed, and exceptions are raised ``from None`` so tracebacks do not carry hvac's.
- Every value read is handed to ``on_secret`` (the broker registers it with its Redactor), with
  the credential-like sibling fields of the same secret (see ``_credential_like``); so are the
  Vault tokens and AppRole secret ids this client obtains.

Per-user paths follow the ``{user}`` rule of ``paths.py``. Permission denied on the per-user path
is an error, not a reason to fall back.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

from .errors import (Context, SecretNotFound, VaultAuthError, VaultConfigError, VaultError, map_exception)
from .paths import candidate_paths
from .settings import K8S_TOKEN_PATH, VaultSettings

__all__ = ["VaultClient"]

log = logging.getLogger("jupyter_securellm.vault")

_SECRETISH_NAME = re.compile(r"key|token|secret|pass|pwd|cred|auth|private|cert", re.I)


def _credential_like(name: str, value) -> bool:
    """Which *other* fields of a secret go to ``on_secret`` too: credential-named, or long strings.

    The requested field always goes. Short plain settings stored beside a key (``region: eu-west-1``,
    ``model: gpt-4o``) do not, or the redactor would blank those words everywhere.
    """
    return isinstance(value, str) and bool(value) and (
        bool(_SECRETISH_NAME.search(str(name))) or len(value) >= 20)

_TOKENISH = re.compile(r"\b(?:hv[sbr]|s|b|r)\.[A-Za-z0-9_.-]{8,}")


@dataclass
class _Entry:
    value: str
    source: str
    expires: float


@dataclass
class _TokenState:
    expires: float | None = None   # monotonic deadline; None = never expires (or unknown)
    ttl: float | None = None       # TTL granted at login/renewal
    renewable: bool = False
    accessor: str | None = None


class VaultClient:
    """Thread-safe, synchronous Vault client for the broker. See the module docstring."""

    def __init__(self, settings: VaultSettings, *, on_secret: Callable[[str], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        settings.validate()
        self.settings = settings
        self.on_secret = on_secret
        self._clock = clock
        self._io = threading.RLock()
        self._cache_lock = threading.Lock()
        self._cache: dict[tuple, _Entry] = {}
        self._tok = _TokenState()
        self._sensitive: set[str] = set()
        self._secret_id: str | None = None     # unwrapped AppRole secret id, memory only
        self._wrapping_token_seen: str | None = None
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()
        self.stats = {"logins": 0, "renewals": 0, "reads": 0, "cache_hits": 0, "fallbacks": 0}
        self._client = self._make_hvac()

    # -- construction --
    def _make_hvac(self, token: str | None = None):
        import hvac

        s = self.settings
        verify: bool | str = s.ca_cert if s.ca_cert else s.verify
        cert = (s.client_cert, s.client_key) if s.client_cert else None
        c = hvac.Client(url=s.url, token=token, namespace=s.namespace or None, verify=verify,
                        cert=cert, timeout=s.timeout)
        if token is None:
            c.token = None  # hvac would pick up $VAULT_TOKEN / ~/.vault-token: only we decide
        return c

    # -- public API --
    def read_secret(self, path: str, key: str, user: str | None = None, *,
                    fallback_path: str | None = None) -> str:
        """The value of ``key`` in the KV v2 secret at ``path`` (``{user}`` rule applies)."""
        candidates, ckey = self._cache_key(path, key, user, fallback_path)
        hit = self._cache_get(ckey)
        if hit is not None:
            return hit
        with self._io:
            hit = self._cache_get(ckey)
            if hit is not None:
                return hit
            for i, cand in enumerate(candidates):
                try:
                    data = self._read_kv(cand)
                except SecretNotFound:
                    continue
                self._register(v for k, v in data.items() if k != key and _credential_like(k, v))
                if key not in data:
                    continue
                value = data[key]
                if not isinstance(value, str):
                    value = str(value)
                self._register([value])
                if i:
                    self.stats["fallbacks"] += 1
                    log.info("Vault: no secret at %r, used shared path %r", candidates[0], cand)
                self._cache_put(ckey, _Entry(value, cand, self._clock() + self.settings.secret_cache_ttl))
                return value
        tried = " then ".join(f"{self.settings.kv_mount}/{c}" for c in candidates)
        raise SecretNotFound(
            f"Vault has no field {key!r} at {tried}: write it there (KV v2) or fix the model's "
            "secret_path/secret_key.", path=candidates[0], status=404)

    def cached(self, path: str, key: str, user: str | None = None, *, fallback_path: str | None = None) -> str | None:
        """The still-valid cached value, or None; no Vault I/O and no I/O lock, so an event loop may call it."""
        return self._cache_get(self._cache_key(path, key, user, fallback_path)[1])

    def _cache_key(self, path, key, user, fallback_path) -> tuple[list, tuple]:
        if not key:
            raise VaultConfigError("Vault secret key must be a non-empty field name", path=path)
        candidates = candidate_paths(path, user or None, fallback_path)  # "" = no user: shared
        return candidates, (path.strip().strip("/"), candidates[0], tuple(candidates[1:]), key)

    def invalidate(self, path: str | None = None) -> int:
        """Drop cached values (all, or those for ``path`` as template or as actual path)."""
        with self._cache_lock:
            if path is None:
                n = len(self._cache)
                self._cache.clear()
                return n
            p = path.strip("/")
            drop = [k for k, e in self._cache.items() if p in (k[0], k[1], e.source)]
            for k in drop:
                del self._cache[k]
            return len(drop)

    def renew_if_needed(self) -> None:
        """Log in or renew the token now if it is missing or near expiry (for a periodic task)."""
        with self._io:
            self._ensure_token()

    def start_background_renewal(self, interval: float = 30.0) -> None:
        """Renew from a daemon thread, so an idle broker's token does not lapse. Stopped by close()."""
        if self._renewer is not None:
            return

        def loop():
            while not self._stop.wait(interval):
                try:
                    self.renew_if_needed()
                except VaultError as e:
                    log.warning("Vault token renewal failed: %s", e)

        self._renewer = threading.Thread(target=loop, name="vault-renewer", daemon=True)
        self._renewer.start()

    def login(self) -> None:
        """Log in now. The server calls this at start-up, before any kernel runs: a response-wrapped
        AppRole secret id is single-use, so unwrapping it first leaves a kernel nothing to unwrap."""
        with self._io, self._mapped(None, login=True):
            self._ensure_token()

    def status(self) -> dict:
        """Health for GET status; never raises and never logs in."""
        import requests

        s = self.settings
        out = {"url": s.url, "reachable": False, "sealed": None, "auth_method": s.auth_method,
               "namespace": s.namespace, "authenticated": self._client.token is not None,
               "token_ttl": self.token_ttl()}
        try:
            verify = s.ca_cert if s.ca_cert else s.verify
            cert = (s.client_cert, s.client_key) if s.client_cert else None
            r = requests.get(s.url.rstrip("/") + "/v1/sys/seal-status", timeout=min(s.timeout, 2.0),
                             verify=verify, cert=cert)
            out["reachable"] = True
            out["sealed"] = bool(r.json().get("sealed")) if r.ok else None
        except Exception:  # unreachable: keep defaults
            pass
        return out

    def token_ttl(self) -> int | None:
        """Seconds left on the current token; None if none yet or it never expires."""
        exp = self._tok.expires
        return None if exp is None else max(0, int(exp - self._clock()))

    def close(self) -> None:
        """Stop renewal, forget cached values and the token (revoking tokens we logged in for)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        self.invalidate()
        with self._io:
            if self._client.token and self.settings.auth_method != "token":
                try:
                    self._client.auth.token.revoke_self()
                except Exception as exc:  # noqa: BLE001 - the token expires on its own; say so
                    log.info("Vault: revoking this server's token at close failed (%s)", type(exc).__name__)
            self._client.token = None
            self._tok = _TokenState()
            try:
                self._client.adapter.close()
            except Exception as exc:  # noqa: BLE001 - closing sockets at shutdown
                log.debug("Vault: closing the HTTP session failed (%s)", type(exc).__name__)

    # -- cache --
    def _cache_get(self, ckey) -> str | None:
        with self._cache_lock:
            e = self._cache.get(ckey)
            if e is None:
                return None
            if self._clock() >= e.expires:
                del self._cache[ckey]
                return None
            self.stats["cache_hits"] += 1
            return e.value

    def _cache_put(self, ckey, entry: _Entry) -> None:
        if self.settings.secret_cache_ttl > 0:
            with self._cache_lock:
                self._cache[ckey] = entry

    # -- Vault I/O (callers hold self._io) --
    def _read_kv(self, path: str) -> dict:
        self.stats["reads"] += 1
        res = self._call(lambda c: c.secrets.kv.v2.read_secret_version(
            path=path, mount_point=self.settings.kv_mount, raise_on_deleted_version=True), path=path)
        data = ((res or {}).get("data") or {}).get("data")
        if not isinstance(data, dict):
            raise SecretNotFound(f"Vault path {self.settings.kv_mount}/{path} holds no KV v2 data",
                                 path=path, status=404)
        return data

    def _call(self, fn, *, path: str | None = None):
        """Run ``fn(hvac_client)`` with a valid token; one fresh login on 403; errors mapped."""
        import hvac.exceptions as hx

        self._ensure_token()
        for attempt in (0, 1):
            try:
                return fn(self._client)
            except Exception as exc:  # noqa: BLE001 - mapped below
                if not (isinstance(exc, hx.Forbidden) and attempt == 0):
                    raise self._mapped_error(exc, path) from None
            # Outside the except block, so a failing login does not chain hvac's exception.
            log.info("Vault denied %s; logging in again once", self._where(path))
            self._login()

    def _ensure_token(self) -> None:
        if self._client.token is None:
            self._login()
            return
        t = self._tok
        if t.expires is None or not t.ttl:
            return
        remaining = t.expires - self._clock()
        if remaining <= 0.2:  # (nearly) expired: renewing would race the expiry
            self._login()
        elif remaining < t.ttl * self.settings.renew_fraction:
            if t.renewable and self._renew():
                return
            self._login()

    def _renew(self) -> bool:
        """renew-self; False if it failed or could not extend the token (max TTL reached)."""
        before = self._tok.expires - self._clock()
        try:
            res = self._client.auth.token.renew_self()
        except Exception as exc:  # noqa: BLE001
            log.info("Vault token renewal failed (%s); logging in again", type(exc).__name__)
            return False
        ttl = float(res["auth"]["lease_duration"])
        self.stats["renewals"] += 1
        self._tok.expires = self._clock() + ttl
        self._tok.renewable = bool(res["auth"].get("renewable"))
        if ttl <= before + 0.5 or ttl < (self._tok.ttl or 0) * self.settings.renew_fraction:
            log.info("Vault token is near its max TTL; logging in again")
            return False
        log.debug("Vault token renewed for %ss", int(ttl))
        return True

    def _login(self) -> None:
        s = self.settings
        self._client.token = None
        with self._mapped(None, login=True):
            if s.auth_method == "token":
                self._login_token()
                return
            if s.auth_method == "approle":
                secret_id = self._approle_secret_id()
                res = self._client.auth.approle.login(role_id=s.approle_role_id, secret_id=secret_id,
                                                      use_token=False, mount_point=s.mount)
            elif s.auth_method == "jwt":
                jwt = self._read_file(s.jwt_path, "vault_jwt_path")
                self._sensitive.add(jwt)
                self._register([jwt])  # a login credential: redacted wherever it is printed or logged
                res = self._client.auth.jwt.jwt_login(role=s.role, jwt=jwt, use_token=False, path=s.mount)
            else:
                jwt = self._read_file(s.jwt_path or K8S_TOKEN_PATH, "vault_jwt_path")
                self._sensitive.add(jwt)
                self._register([jwt])
                res = self._client.auth.kubernetes.login(role=s.role, jwt=jwt, use_token=False,
                                                         mount_point=s.mount)
        auth = res["auth"]
        self._set_token(auth["client_token"], auth.get("lease_duration"), auth.get("renewable"),
                        auth.get("accessor"))
        log.info("Vault login with %s at %s succeeded (token ttl %ss)", s.auth_method, s.mount,
                 auth.get("lease_duration"))

    def _login_token(self) -> None:
        s = self.settings
        if s.token_path:
            token = self._read_file(s.token_path, "vault_token_path")
        else:
            token = os.environ.get("VAULT_TOKEN", "").strip()
            if not token:
                raise VaultConfigError("Vault setting vault_token_path is not set and $VAULT_TOKEN is "
                                       "empty: point vault_token_path at a file holding the token")
        self._client.token = token
        self._sensitive.add(token)
        try:
            with self._mapped(None, login=True):
                info = self._client.auth.token.lookup_self()["data"]
        except VaultError:
            self._client.token = None
            raise
        ttl = info.get("ttl") or 0
        self._set_token(token, ttl, info.get("renewable"), info.get("accessor"))
        log.info("Vault token from %s accepted (ttl %ss)", s.token_path or "$VAULT_TOKEN", ttl)

    def _set_token(self, token: str, ttl, renewable, accessor) -> None:
        self._client.token = token
        self._sensitive.add(token)
        ttl = float(ttl or 0)
        self._tok = _TokenState(expires=self._clock() + ttl if ttl > 0 else None, ttl=ttl or None,
                                renewable=bool(renewable), accessor=accessor)
        self.stats["logins"] += 1
        self._register([token])

    def _approle_secret_id(self) -> str:
        s = self.settings
        raw = self._read_file(s.approle_secret_id_path, "vault_approle_secret_id_path")
        self._sensitive.add(raw)
        wrapped = s.approle_secret_id_wrapped
        if wrapped is None:
            try:
                uuid.UUID(raw)
                wrapped = False
            except ValueError:
                wrapped = True
        if not wrapped:
            self._register([raw])
            return raw
        if raw == self._wrapping_token_seen and self._secret_id:
            return self._secret_id  # a wrapping token works once; reuse what it gave us
        self._secret_id = self._unwrap_secret_id(raw)
        self._wrapping_token_seen = raw
        self._sensitive.add(self._secret_id)
        self._register([self._secret_id])
        return self._secret_id

    def _unwrap_secret_id(self, wrapping_token: str) -> str:
        s = self.settings
        path = s.approle_secret_id_path
        try:
            info = self._client.adapter.post("/v1/sys/wrapping/lookup", json={"token": wrapping_token})
        except Exception as exc:  # noqa: BLE001
            import hvac.exceptions as hx

            if isinstance(exc, (hx.InvalidRequest, hx.Forbidden, hx.InvalidPath)):
                raise VaultAuthError(
                    f"Vault: the response-wrapped AppRole secret id in {path} is expired or was already "
                    "unwrapped (a wrapping token works once; if this broker did not use it, someone "
                    "else did: investigate). Put a fresh wrapped secret id there.") from None
            raise self._mapped_error(exc, None, login=True) from None
        creation = (info.get("data") or {}).get("creation_path", "")
        if not re.fullmatch(rf"auth/{re.escape(s.mount)}/role/[^/]+/secret-id", creation):
            raise VaultAuthError(
                f"Vault: the wrapping token in {path} does not wrap an AppRole secret id from "
                f"auth/{s.mount}/ (it was created at {creation or 'an unknown path'}); refusing it.")
        unwrapper = self._make_hvac(token=wrapping_token)
        try:
            with self._mapped(None, login=True):
                res = unwrapper.adapter.post("/v1/sys/wrapping/unwrap")
        finally:
            unwrapper.adapter.close()
        secret_id = ((res or {}).get("data") or {}).get("secret_id")
        if not secret_id:
            raise VaultAuthError(f"Vault: unwrapping {path} gave no secret_id")
        log.info("Vault: unwrapped the AppRole secret id from %s", path)
        return secret_id

    # -- helpers --
    def _read_file(self, path: str, setting: str) -> str:
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                value = f.read().strip()
        except OSError as e:
            raise VaultConfigError(f"Vault setting {setting}: cannot read {path} ({e.strerror}); "
                                   "check the file exists and is readable by the server") from None
        if not value:
            raise VaultConfigError(f"Vault setting {setting}: {path} is empty")
        return value

    def _register(self, values) -> None:
        if self.on_secret is None:
            return
        for v in values:
            if v:
                try:
                    self.on_secret(v)
                except Exception as exc:  # noqa: BLE001 - fail closed, without the value
                    raise VaultError(f"Vault: registering a secret with the redactor failed "
                                     f"({type(exc).__name__}); refusing to hand it out") from None

    def _where(self, path: str | None) -> str:
        return f"{self.settings.kv_mount}/{path}" if path else "the request"

    def _scrub(self, text: str) -> str:
        with self._cache_lock:
            cached = {e.value for e in self._cache.values()}
        for v in sorted(self._sensitive | cached, key=len, reverse=True):
            if v and len(v) >= 4:
                text = text.replace(v, "[REDACTED]")
        return _TOKENISH.sub("[REDACTED]", text)[:300]

    def _detail(self, exc) -> str:
        errors = getattr(exc, "errors", None)
        if not errors:
            return ""
        text = "; ".join(str(e) for e in errors)
        text = re.sub(r"\d+ errors? occurred:", "", text)
        text = " ".join(text.replace("*", " ").split()).strip(" ;")
        return " (Vault said: " + self._scrub(text) + ")" if text else ""

    @contextmanager
    def _mapped(self, path: str | None, *, login: bool = False):
        """Run a block of hvac calls; any error leaves as one of our VaultErrors, without hvac's text."""
        try:
            yield
        except VaultError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped by the table in errors.py
            raise self._mapped_error(exc, path, login=login) from None

    def _mapped_error(self, exc: BaseException, path: str | None, *, login: bool = False) -> VaultError:
        s = self.settings
        hint = {"token": f"put a valid token in {s.token_path or '$VAULT_TOKEN'}",
                "approle": f"check vault_approle_role_id and the secret id in {s.approle_secret_id_path}",
                "jwt": f"check vault_role {s.role!r} and the JWT in {s.jwt_path}",
                "kubernetes": f"check vault_role {s.role!r} and the service-account token"}[s.auth_method]
        ctx = Context(url=s.url, where=self._where(path), path=path,
                      namespace=f" namespace {s.namespace}" if s.namespace else "", kv_mount=s.kv_mount,
                      login_hint=hint, auth_method=s.auth_method, detail=self._detail, timeout=s.timeout,
                      login=login)
        return map_exception(exc, ctx, login=login)
