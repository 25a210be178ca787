"""Who a call is for on a JupyterHub: the Hub's user name and groups, read in one place.

Groups feed policy (`input.groups`) and budget groups through `Caller.groups`. They come from the
Hub's REST API, never from a request body, and are cached briefly (a group change takes effect within
`ttl` seconds). If the Hub cannot be asked, calls fail closed: an empty group list could slip past a
policy that denies by group.
"""
from __future__ import annotations

import json
import time
from urllib.parse import quote

from ..server.errors import BrokerError


def groups_in(model) -> tuple[str, ...] | None:
    """The sorted groups of a Hub user model, or None if the model does not carry them."""
    if not isinstance(model, dict) or not isinstance(model.get("groups"), list):
        return None
    return tuple(sorted(str(g) for g in model["groups"]))


class HubGroups:
    """Group membership of Hub users, read with `token` (which needs `read:users:groups`).

    A single-user server asks about its own user with its own token (`GET /user`: the `server` role
    needs `read:users:groups!user`); the broker service asks about any user with its own token
    (`GET /users/<name>`: its role needs `read:users:groups`).
    """

    def __init__(self, api_url: str, token: str, *, ttl: float = 60.0, self_only: bool = False):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.ttl = ttl
        self.self_only = self_only
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    async def get(self, user: str) -> tuple[str, ...]:
        hit = self._cache.get(user)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        url = f"{self.api_url}/user" if self.self_only else f"{self.api_url}/users/{quote(user, safe='')}"
        try:
            resp = await AsyncHTTPClient().fetch(url, headers={"Authorization": f"token {self.token}"},
                                                 request_timeout=10)
            model = json.loads(resp.body)
        except (HTTPClientError, OSError, ValueError) as exc:
            raise BrokerError("broker_unavailable", f"Could not read the groups of Hub user {user!r} from the "
                                                    f"Hub API ({type(exc).__name__}); retry, or ask your admin to "
                                                    "check the Hub and the token's read:users:groups scope.") from None
        if model.get("name") != user:
            raise BrokerError("unauthorized", "The Hub answered for another user; refusing the call.")
        groups = groups_in(model)
        if groups is None:
            raise BrokerError("broker_unavailable", "The Hub did not return groups for this user: grant the "
                                                    "read:users:groups scope (see docs/jupyterhub.md).")
        self._cache[user] = (now, groups)
        return groups


def hub_env() -> dict | None:
    """The Hub's settings for this process (a single-user server or a service), or None off a Hub."""
    import os

    api_url, token = os.environ.get("JUPYTERHUB_API_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
    if not api_url or not token:
        return None
    return {"api_url": api_url, "token": token, "user": os.environ.get("JUPYTERHUB_USER", ""),
            "service_name": os.environ.get("JUPYTERHUB_SERVICE_NAME", "")}
