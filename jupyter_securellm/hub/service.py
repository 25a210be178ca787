"""`jupyter-securellm broker --config FILE`: the broker alone, as a JupyterHub service (trust tier 3).

Run under its own Unix user (a managed service with the `user` key) or as an external service (its
own container or Deployment), the broker is the only process holding the Vault credential and the
provider keys; users' kernels and servers never share its uid. It reads the same `c.SecureLLM.*`
config names as the server extension and builds the very same broker through
`SecureLLM.build_broker()`: there is no second copy of the broker.

Every request is authenticated with `HubAuth` from the `Authorization: token ...` header only (no
cookie, so no cross-site request can borrow a browser session); the token must carry
`access:services!service=<name>`. The user is the Hub's owner of that token; user names in request
bodies or headers are ignored. Endpoints are the REST API of the extension, under
`/services/<name>/jupyter-securellm/v1/`.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import signal
from urllib.parse import urlsplit

from tornado import web

from ..server.governor import Caller
from ..server.errors import BrokerError
from ..server.handlers import PREFIX, BaseHandler, ChatCompletionsHandler, SecretsGetHandler

log = logging.getLogger("jupyter_securellm.broker")
_KERNEL_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def load_app(config_file: str | None):
    """A `SecureLLM` configured from a jupyter_server-style config file (.py or .json), checked."""
    from traitlets.config import Config
    from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

    from ..server.app import ConfigError, SecureLLM

    cfg = Config()
    if config_file:
        path = os.path.abspath(config_file)
        if not os.path.isfile(path):
            raise SystemExit(f"jupyter-securellm broker: config file {config_file!r} not found.")
        loader_cls = JSONFileConfigLoader if path.endswith(".json") else PyFileConfigLoader
        cfg = loader_cls(os.path.basename(path), os.path.dirname(path)).load_config()
    from traitlets import TraitError

    try:
        app = SecureLLM(config=cfg)
        app.log = log
        app.check_config()
    except (ConfigError, TraitError) as exc:  # e.g. a value outside an Enum: the trait's own sentence
        raise SystemExit(f"jupyter-securellm broker: configuration error: {exc}") from None
    if app.broker_mode != "local":
        raise SystemExit("jupyter-securellm broker: configuration error: c.SecureLLM.broker_mode must stay 'local' "
                         "in the broker service's own config (it is the broker).")
    return app


def declared_notebook(headers) -> str | None:
    """The notebook path the user's server declared (X-SecureLLM-Notebook), or None if absent or malformed.

    Metadata for the audit log only: the user's server runs as the user, so anything it says about the
    notebook is the user's word. It never feeds the policy input or any other decision.
    """
    from urllib.parse import unquote

    from .forward import MAX_NOTEBOOK_PATH, NOTEBOOK_HEADER

    raw = headers.get(NOTEBOOK_HEADER, "")
    if not raw or len(raw) > 3 * MAX_NOTEBOOK_PATH:
        return None
    try:
        path = unquote(raw, errors="strict") if raw.isascii() else None
    except UnicodeDecodeError:
        return None
    if not path or len(path) > MAX_NOTEBOOK_PATH or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return None
    return path


def service_auth(method):
    """Hub token -> Caller (the token's owner, the Hub's groups); BrokerError -> JSON error."""

    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        from jupyterhub.services.auth import UserNotAllowed

        try:
            model = await self.hub_auth.get_user(self, sync=False)
            if not model:
                raise BrokerError("unauthorized", "Send a JupyterHub API token (Authorization: token ...) with the "
                                                  f"scope access:services!service={self.settings['service_name']}.")
            try:
                model = self.check_hub_user(model)
            except UserNotAllowed:
                raise BrokerError("unauthorized", "This Hub token lacks the scope access:services!service="
                                                  f"{self.settings['service_name']}.") from None
            if model.get("kind", "user") != "user" or not model.get("name"):
                raise BrokerError("unauthorized", "Only JupyterHub users may call the broker (not services).")
            self._hub_auth_user_cache = model
            from .identity import groups_in

            groups = groups_in(model)
            if groups is None:
                groups = await self.settings["hub_groups"].get(model["name"])
            label = self.request.headers.get("X-SecureLLM-Kernel", "")
            self.caller = Caller(user=model["name"], kernel_id=label if _KERNEL_LABEL.match(label) else None,
                                 groups=groups, declared_notebook=declared_notebook(self.request.headers))
            return await method(self, *args, **kwargs)
        except BrokerError as exc:
            self.send_broker_error(exc)

    return wrapper


def _raw(handler_method):
    """The endpoint's own code, without the extension's Jupyter/kernel-token authentication."""
    import inspect

    raw = inspect.unwrap(handler_method)
    assert raw is not handler_method, "expected an authenticated handler method"
    return raw


class _ServiceHandler(web.RequestHandler):
    """The extension's handler plumbing (JSON bodies, contract errors) with Hub authentication."""

    from jupyterhub.services.auth import HubAuthenticated as _HA

    hub_scopes = _HA.hub_scopes
    allow_all = _HA.allow_all
    check_hub_user = _HA.check_hub_user
    hub_services = hub_users = hub_groups = None
    allow_admin = False
    del _HA

    caller: Caller | None = None
    json_body = BaseHandler.json_body
    send_broker_error = BaseHandler.send_broker_error

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    @property
    def broker(self):
        return self.settings["jupyter_securellm_broker"]

    def check_xsrf_cookie(self):  # token-only authentication: no cookie is ever honoured
        return None

    def write_error(self, status_code, **kwargs):
        type_ = {404: "not_found", 405: "invalid_request", 400: "invalid_request"}.get(status_code, "provider_error")
        message = "Internal broker error; see the service log." if status_code >= 500 else self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"type": type_, "message": message}}))


class ChatHandler(_ServiceHandler):
    post = service_auth(_raw(ChatCompletionsHandler.post))
    _stream = ChatCompletionsHandler._stream


class ModelsHandler(_ServiceHandler):
    @service_auth
    async def get(self):
        self.finish(json.dumps(await self.broker.dispatch(self.caller, "models")))


class StatusHandler_(_ServiceHandler):
    @service_auth
    async def get(self):
        status = await self.broker.dispatch(self.caller, "status",
                                            {"version": self.settings["jupyter_securellm_version"]})
        status["tier"] = 3  # the key lives under another uid than any user's kernel
        status["service"] = self.settings["service_name"]
        status["groups"] = list(self.caller.groups)
        self.finish(json.dumps(status))


class SecretsHandler(_ServiceHandler):
    post = service_auth(_raw(SecretsGetHandler.post))


class MetricsHandler(_ServiceHandler):
    """Prometheus text format from the service's own governance metrics, authenticated like every endpoint
    (a Prometheus scraper uses a Hub token with the service scope)."""

    @service_auth
    async def get(self):
        governance = getattr(self.settings["jupyter_securellm_app"], "governance", None)
        if governance is None:
            raise BrokerError("not_found", "Metrics are not available on this broker service.")
        metrics = governance.gov.metrics
        self.set_header("Content-Type", metrics.content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(metrics.render())


class HealthHandler(web.RequestHandler):
    """Unauthenticated liveness for load balancers and Kubernetes probes; says nothing else."""

    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish('{"ok": true}')


def make_web_app(app, *, service_name: str, prefix: str, hub_auth, hub_groups) -> web.Application:
    from .. import __version__

    base = prefix.rstrip("/") + "/" + PREFIX
    handlers = [
        (rf"{base}/chat/completions", ChatHandler),
        (rf"{base}/models", ModelsHandler),
        (rf"{base}/status", StatusHandler_),
        (rf"{base}/secrets/get", SecretsHandler),
        (rf"{base}/metrics", MetricsHandler),
        (rf"{base}/health", HealthHandler),
    ]
    return web.Application(handlers, hub_auth=hub_auth, hub_groups=hub_groups, service_name=service_name,
                           jupyter_securellm_broker=app.broker, jupyter_securellm_app=app,
                           jupyter_securellm_max_request_bytes=app.max_request_bytes,
                           jupyter_securellm_version=__version__)


def main(config_file: str | None, *, ip: str | None = None, port: int | None = None) -> int:
    """Run the broker service until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    from jupyterhub.services.auth import HubAuth

    from ..server import hardening
    from .identity import HubGroups, hub_env

    env = hub_env()
    if env is None:
        raise SystemExit("jupyter-securellm broker: not started by JupyterHub: set JUPYTERHUB_API_URL and "
                         "JUPYTERHUB_API_TOKEN (a managed service gets them; see docs/jupyterhub.md).")
    service_name = env["service_name"] or os.environ.get("JUPYTERHUB_SERVICE_NAME", "")
    if not service_name:
        raise SystemExit("jupyter-securellm broker: JUPYTERHUB_SERVICE_NAME is not set (the service's name in the Hub).")
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    app = load_app(config_file)
    if app.hub_service_name and app.hub_service_name != service_name:
        log.warning("c.SecureLLM.hub_service_name is %r but the Hub runs this service as %r; serving %r",
                    app.hub_service_name, service_name, service_name)
    if app.harden_process:
        log.info("process marked non-dumpable: %s", hardening.set_non_dumpable())

    bind = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "") or "http://127.0.0.1:8000")
    ip = ip or bind.hostname or "127.0.0.1"
    port = port if port is not None else (bind.port or 8000)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or f"/services/{service_name}/"

    async def run() -> None:
        app.build_broker()
        if app.preload_litellm:
            app.preload()
        hub_auth = HubAuth(api_url=env["api_url"], api_token=env["token"], cache_max_age=60,
                           access_scopes={f"access:services!service={service_name}"})
        hub_groups = HubGroups(env["api_url"], env["token"], ttl=app.hub_groups_ttl)
        web_app = make_web_app(app, service_name=service_name, prefix=prefix, hub_auth=hub_auth,
                               hub_groups=hub_groups)
        server = web_app.listen(port, address=ip, xheaders=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("SecureLLM broker service %r (pid %d) on http://%s:%d%s%s", service_name, os.getpid(), ip, port,
                 prefix, PREFIX)
        await stop.wait()
        log.info("SecureLLM broker service: stopping")
        server.stop()
        await app.broker.aclose()
        governance = getattr(app, "governance", None)
        if governance is not None:  # drains the group commit: every queued record written and fsynced
            governance.close()
            log.info("SecureLLM broker service: audit log closed")
        close = getattr(app.vault, "close", None)
        if close is not None:
            close()

    asyncio.run(run())
    return 0
