"""`secrets.get(path, key)` for notebooks: only paths the admin opened, never a provider key.

A path is refused when (1) any model's key may be read from it, by Vault's own `{user}` rule
(`vault.paths.resolves_to`: any user's path or the shared fallback), (2) no glob of
`c.SecureLLM.user_secret_paths` matches it, or (3) the value read equals a provider key, whatever
path it was stored under.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Mapping

from ..vault.paths import resolves_to
from .errors import BrokerError
from .keys import sha
from .schema import SECRET_SCHEMA, validate

MAX_PATH, MAX_KEY = 512, 256


def parse(body: Any) -> tuple[str, str]:
    """(path, key) of a secrets/get body; BrokerError 400 with one sentence otherwise."""
    validate(body, SECRET_SCHEMA)
    path, key = body["path"].strip().strip("/"), body["key"]
    segs = path.split("/")
    if not path or any(s in ("", ".", "..") for s in segs) or len(path) > MAX_PATH or not key or len(key) > MAX_KEY:
        raise BrokerError("invalid_request", "Field 'path' must be a KV path like 'db/analytics' (no empty, "
                                             "'.' or '..' segments) and 'key' a field name.")
    return path, key


class UserSecrets:
    """The ACL and the read; `keys` is the broker's KeySource, `models` its ModelConfigs."""

    def __init__(self, keys, models: Mapping, globs):
        self.keys = keys
        self.models = models
        self.globs = list(globs)

    def denied(self, path: str) -> BrokerError:
        return BrokerError("policy_denied", f"Secret path {path!r} is not readable from notebooks; ask your admin to "
                                            "add it to c.SecureLLM.user_secret_paths (provider keys never are).")

    def check_path(self, path: str, user: str) -> None:
        if any(resolves_to(m.secret_path, path) for m in self.models.values()):
            raise self.denied(path)
        globs = [g.replace("{user}", user).strip("/") for g in self.globs]
        if not any(fnmatch.fnmatchcase(path, g) for g in globs):
            raise self.denied(path)

    async def read(self, path: str, key: str, user: str) -> str:
        value = await self.keys.read(path, key, user, what=f"secret {path!r}", provider_key=False)
        digest = sha(value)
        if digest in self.keys.provider_key_digests:
            raise self.denied(path)
        for m in self.models.values():  # the same value stored under another path than a model's: refuse
            if await self._provider_key_digest(m, user) == digest:
                raise self.denied(path)
        return value

    async def _provider_key_digest(self, model, user: str) -> str | None:
        try:
            return sha(await self.keys.read(model.secret_path, model.secret_key, user,
                                            what=f"the key of model {model.alias!r}"))
        except BrokerError as exc:  # an unreadable provider key cannot equal this value
            if self.keys.log:
                self.keys.log.info("SecureLLM: secrets.get could not compare with model %r's key (%s)",
                                   model.alias, exc.type)
            return None
