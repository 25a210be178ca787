"""The SecureLLM Jupyter server extension: configuration, start-up checks and wiring.

Every `c.SecureLLM.*` trait of DESIGN.md lives here with its help text. A misconfigured
broker must not start half-way: kernels would then launch with an unsanitized environment.
So configuration errors stop the server at start-up with the trait's name in the message.
"""
from __future__ import annotations

import getpass
import os
from urllib.parse import urlsplit

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Enum, Float, Int, List, TraitError, Type, Unicode

from .. import __version__
from .egress import DEFAULT_ALLOWED_HOSTS, PROVIDER_DEFAULT_HOSTS, host_allowed, provider_of, split_host
from .kernels import DEFAULT_ENV_DENY_PATTERNS

MODEL_KEYS_REQUIRED = ("model", "secret_path", "secret_key")
MODEL_KEYS_OPTIONAL = ("api_base", "allow_http")


class ConfigError(TraitError):
    """A `c.SecureLLM.*` value that cannot work; the message starts with the trait's name."""


class SecureLLM(ExtensionApp):
    """Brokers LLM calls with keys from Vault, scrubs saved notebooks, audits every call."""

    name = "jupyter_securellm"

    # -- Vault --------------------------------------------------------------------------------
    vault_url = Unicode(
        os.environ.get("VAULT_ADDR", "http://127.0.0.1:8200"),
        help="URL of the Vault/OpenBao server holding provider keys (defaults to $VAULT_ADDR).",
    ).tag(config=True)
    vault_namespace = Unicode(
        "", help="Vault Enterprise / OpenBao namespace for every request; empty for none."
    ).tag(config=True)
    vault_auth_method = Enum(
        ["token", "approle", "jwt", "kubernetes"], "token",
        help="How the server logs in to Vault: token (read from vault_token_path), approle "
             "(vault_approle_role_id + vault_approle_secret_id_path), jwt (vault_jwt_path + vault_role) "
             "or kubernetes (service-account token at vault_jwt_path + vault_role).",
    ).tag(config=True)
    vault_token_path = Unicode(
        "", help="File with the Vault token for vault_auth_method='token'; empty: the server's $VAULT_TOKEN "
                 "(which env_deny_patterns keeps out of kernels).",
    ).tag(config=True)
    vault_approle_role_id = Unicode("", help="AppRole role id for vault_auth_method='approle'.").tag(config=True)
    vault_approle_secret_id_path = Unicode(
        "", help="File with the AppRole secret id (or a response-wrapping token for it)."
    ).tag(config=True)
    vault_jwt_path = Unicode(
        "", help="File with the JWT for vault_auth_method='jwt' or 'kubernetes' (kubernetes defaults to "
                 "/var/run/secrets/kubernetes.io/serviceaccount/token).",
    ).tag(config=True)
    vault_role = Unicode("", help="Vault role for jwt / kubernetes login.").tag(config=True)
    vault_kv_mount = Unicode("secret", help="Mount point of the KV v2 engine holding the keys.").tag(config=True)
    secret_cache_ttl = Float(
        300.0, help="Seconds a secret read from Vault stays cached in server memory (0 disables the cache)."
    ).tag(config=True)

    # -- models and egress ---------------------------------------------------------------------
    models = Dict(
        {},
        help='Model aliases: {"alias": {"model": <litellm model>, "secret_path": <KV path, may contain {user}>, '
             '"secret_key": <field>, "api_base": <optional URL>, "allow_http": <optional bool, needed for a '
             'plain-http api_base>}}. Kernels only ever see the aliases.',
    ).tag(config=True)
    allowed_hosts = List(
        Unicode(), list(DEFAULT_ALLOWED_HOSTS),
        help="Hosts the broker may send provider keys to: 'host', 'host:port' or '*.domain'. Every model's "
             "endpoint must be listed; requests can never move api_base to another host.",
    ).tag(config=True)
    user_secret_paths = List(
        Unicode(), [],
        help="Globs of KV paths (may contain {user}) that kernels may read with secrets.get(); default none. "
             "Provider-key paths are never returned, whatever this says.",
    ).tag(config=True)
    prompt_dlp_mode = Enum(
        ["block", "redact"], "block",
        help="What to do when a prompt contains a secret: 'block' refuses the call (422 dlp_blocked), "
             "'redact' replaces the secret with the placeholder and sends the rest.",
    ).tag(config=True)
    request_timeout = Float(120.0, help="Seconds to wait for a provider answer before a 504.").tag(config=True)
    max_request_bytes = Int(
        2 * 1024 * 1024, help="Largest accepted request body in bytes; bigger bodies get a 400."
    ).tag(config=True)
    broker_url = Unicode(
        "", help="URL kernels use to reach the broker (JUPYTER_SECURELLM_URL). Default: "
                 "http://127.0.0.1:<port><base_url>jupyter-securellm/v1.",
    ).tag(config=True)
    preload_litellm = Bool(
        True, help="Import litellm in a background thread at start-up so the first call is fast."
    ).tag(config=True)

    # -- policy, audit, storage (later issues) -------------------------------------------------
    policy_paths = List(Unicode(), [], help="Rego policy files or directories (policy arrives in a later issue).").tag(config=True)
    audit_log_path = Unicode("", help="Hash-chained JSONL audit log file; empty disables it.").tag(config=True)
    database_url = Unicode(
        "", help="SQLAlchemy URL for state shared by many servers; empty uses SQLite under the runtime dir."
    ).tag(config=True)
    policy_class = Type(
        "jupyter_securellm.server.broker.AllowAllPolicy", klass=object,
        help="Policy hook called before every broker action (allow-all until the policy issue lands).",
    ).tag(config=True)
    vault_client_class = Type(
        "jupyter_securellm.server.vault.VaultClient", klass=object,
        help="Vault client class (swappable for tests of error paths a real Vault cannot produce).",
    ).tag(config=True)

    # -- kernel environment, redaction, hardening ------------------------------------------------
    env_deny_patterns = List(
        Unicode(), list(DEFAULT_ENV_DENY_PATTERNS),
        help="Case-insensitive globs of environment variable names removed from every kernel's launch "
             "environment (values equal to a known secret are removed too).",
    ).tag(config=True)
    redaction_placeholder = Unicode(
        "[REDACTED:{rule_id}]", help="Text that replaces a secret; {rule_id} is the detection rule id."
    ).tag(config=True)
    harden_process = Bool(
        True, help="On Linux, prctl(PR_SET_DUMPABLE, 0) so kernels of the same user cannot read this "
                   "server's /proc/<pid>/environ or memory.",
    ).tag(config=True)

    # -- save hook (jupyter_securellm.server.contents) ----------------------------------------
    save_hook_mode = Enum(
        ["redact", "block", "warn"], default_value="redact",
        help="What saving a notebook or text file that holds a secret does: 'redact' replaces it with the "
             "placeholder before writing, 'block' refuses the save (HTTP 400 naming rule, cell and line), "
             "'warn' saves it and logs a warning.",
    ).tag(config=True)
    save_hook_text_extensions = List(
        Unicode(), default_value=[".py", ".md", ".env", ".json", ".txt", ".yaml", ".yml", ".cfg", ".ini", ".toml"],
        help="Every file saved as text is scanned on save, whatever its name; files saved as base64 (uploads) "
             "whose names end with one of these are decoded and scanned too (e.g. '.env' also matches 'prod.env').",
    ).tag(config=True)

    # -------------------------------------------------------------------------------------------
    def _link_jupyter_server_extension(self, serverapp):
        # Trait type errors surface here; the extension manager would only log them and the
        # server would run with unsanitized kernels, so stop instead.
        try:
            super()._link_jupyter_server_extension(serverapp)
        except TraitError as exc:
            self._fail(str(exc))

    def _fail(self, message: str):
        self.log.critical("jupyter_securellm: configuration error: %s", message)
        raise SystemExit(f"jupyter_securellm: configuration error: {message}")

    @property
    def owner(self) -> str:
        """The user this single-user server (and its kernels) belongs to."""
        user = os.environ.get("JUPYTERHUB_USER")
        if user:
            return user
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # a container uid without a passwd entry
            return str(os.getuid())

    def check_config(self) -> None:
        """Raise ConfigError naming the first trait whose value cannot work."""
        _url("vault_url", self.vault_url)
        if self.broker_url:
            _url("broker_url", self.broker_url)
        m = self.vault_auth_method
        if m == "approle":
            if not self.vault_approle_role_id:
                raise ConfigError("c.SecureLLM.vault_approle_role_id: required when vault_auth_method='approle'.")
            if not self.vault_approle_secret_id_path:
                raise ConfigError("c.SecureLLM.vault_approle_secret_id_path: required when vault_auth_method='approle'.")
        if m in ("jwt", "kubernetes") and not self.vault_role:
            raise ConfigError(f"c.SecureLLM.vault_role: required when vault_auth_method={m!r}.")
        if m == "jwt" and not self.vault_jwt_path:
            raise ConfigError("c.SecureLLM.vault_jwt_path: required when vault_auth_method='jwt'.")
        if not self.vault_kv_mount.strip("/"):
            raise ConfigError("c.SecureLLM.vault_kv_mount: must name the KV v2 mount, e.g. 'secret'.")
        if self.secret_cache_ttl < 0:
            raise ConfigError("c.SecureLLM.secret_cache_ttl: must be >= 0 seconds.")
        if self.request_timeout <= 0:
            raise ConfigError("c.SecureLLM.request_timeout: must be > 0 seconds.")
        if self.max_request_bytes <= 0:
            raise ConfigError("c.SecureLLM.max_request_bytes: must be > 0.")
        for h in self.allowed_hosts:
            if not h.strip() or "/" in h or "@" in h:
                raise ConfigError(f"c.SecureLLM.allowed_hosts: {h!r} is not a host; use 'host', 'host:port' or '*.domain'.")
        for p in self.env_deny_patterns:
            if not p.strip():
                raise ConfigError("c.SecureLLM.env_deny_patterns: empty pattern.")
        try:
            self.redaction_placeholder.format(rule_id="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"c.SecureLLM.redaction_placeholder: only {{rule_id}} may be used ({exc}).") from None
        for alias, cfg in self.models.items():
            where = f"c.SecureLLM.models[{alias!r}]"
            if not isinstance(alias, str) or not alias or "/" in alias:
                raise ConfigError(f"c.SecureLLM.models: alias {alias!r} must be a non-empty string without '/'.")
            if not isinstance(cfg, dict):
                raise ConfigError(f"{where}: must be a dict with keys {', '.join(MODEL_KEYS_REQUIRED)}.")
            for k in MODEL_KEYS_REQUIRED:
                if not isinstance(cfg.get(k), str) or not cfg[k]:
                    raise ConfigError(f"{where}: {k!r} is required and must be a non-empty string.")
            extra = set(cfg) - set(MODEL_KEYS_REQUIRED) - set(MODEL_KEYS_OPTIONAL)
            if extra:
                raise ConfigError(f"{where}: unknown key(s) {sorted(extra)}; allowed: "
                                  f"{list(MODEL_KEYS_REQUIRED + MODEL_KEYS_OPTIONAL)}.")
            if cfg.get("api_base"):
                try:
                    host, port = split_host(cfg["api_base"])
                except ValueError as exc:
                    raise ConfigError(f"{where}: api_base {exc}.") from None
            else:
                host, port = PROVIDER_DEFAULT_HOSTS.get(provider_of(cfg["model"]) or ""), None
                if host is None:
                    raise ConfigError(f"{where}: no api_base and the provider of {cfg['model']!r} has no known "
                                      "host; set api_base.")
            if not host_allowed(host, port, self.allowed_hosts):
                label = f"{host}:{port}" if port else host
                raise ConfigError(f"c.SecureLLM.allowed_hosts: {where} sends its key to {label}, which is not "
                                  "allowlisted; add it or change the model.")
            if "allow_http" in cfg and not isinstance(cfg["allow_http"], bool):
                raise ConfigError(f"{where}: 'allow_http' must be True or False.")
            if str(cfg.get("api_base", "")).lower().startswith("http://") and not cfg.get("allow_http"):
                label = f"{host}:{port}" if port else host
                raise ConfigError(
                    f"{where}: api_base is plain http: the key would travel unencrypted, and any process on "
                    f"this machine that binds {label} while the model server is down would receive it. Use "
                    "https, or set \"allow_http\": True for a local endpoint you trust (docs/broker.md).")
        import fnmatch

        for g in self.user_secret_paths:
            if not g.strip("/"):
                raise ConfigError("c.SecureLLM.user_secret_paths: empty glob.")
            for alias, cfg in self.models.items():
                if fnmatch.fnmatchcase(cfg["secret_path"].strip("/"), g.strip("/")):
                    self.log.warning("SecureLLM: c.SecureLLM.user_secret_paths glob %r matches the key path of "
                                     "model %r; provider keys are never returned, narrow the glob.", g, alias)

    def vault_settings(self):
        """Build the Vault client's settings object from the vault_* traits."""
        import dataclasses
        import inspect

        from . import vault as vault_mod

        values = {
            "url": self.vault_url, "namespace": self.vault_namespace or None, "auth_method": self.vault_auth_method,
            "token_path": os.path.expanduser(self.vault_token_path) if self.vault_token_path else None,
            "approle_role_id": self.vault_approle_role_id or None,
            "approle_secret_id_path": self.vault_approle_secret_id_path or None,
            "jwt_path": self.vault_jwt_path or None, "role": self.vault_role or None,
            "kv_mount": self.vault_kv_mount, "cache_ttl": self.secret_cache_ttl,
            "secret_cache_ttl": self.secret_cache_ttl,
        }
        cls = vault_mod.VaultSettings
        if dataclasses.is_dataclass(cls):
            names = {f.name for f in dataclasses.fields(cls)}
        else:
            names = set(inspect.signature(cls).parameters)
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})

    def _make_vault(self, on_secret):
        """The real client takes VaultSettings; a replacement class gets this app (tests)."""
        from . import vault as vault_mod

        cls = self.vault_client_class
        try:
            if issubclass(cls, vault_mod.VaultClient):
                client = cls(self.vault_settings(), on_secret=on_secret)
                self._first_vault_login(client, vault_mod)
                client.start_background_renewal()
                return client
        except vault_mod.VaultConfigError as exc:
            self._fail(f"c.SecureLLM.{_vault_trait(str(exc))}: {exc}")
        return cls(self, on_secret=on_secret)

    def _first_vault_login(self, client, vault_mod) -> None:
        """Log in before the server accepts requests, so no kernel can exist yet.

        Above all for a response-wrapped AppRole secret id: it is single-use, and whoever unwraps it
        first owns the login. Vault being down is not fatal (calls fail closed and retry later), but
        the window it leaves open is logged loudly.
        """
        if not self.models and not self.user_secret_paths:
            return  # nothing will ever be read from Vault (e.g. only the save hook is used)
        try:
            client.login()
            self.log.info("SecureLLM: logged in to Vault at %s (%s)", self.vault_url, self.vault_auth_method)
        except vault_mod.VaultConfigError as exc:
            self._fail(f"c.SecureLLM.{_vault_trait(str(exc))}: {exc}")
        except vault_mod.VaultError as exc:
            wrapped = self.vault_auth_method == "approle"
            self.log.error("SecureLLM: Vault login at start-up failed: %s%s", exc,
                           " -- until the server logs in, a response-wrapped secret id is still unwrapped on "
                           "disk; fix Vault and restart" if wrapped else "")

    def _default_broker_url(self) -> str:
        sa = self.serverapp
        scheme = "https" if getattr(sa, "certfile", None) else "http"
        ip = sa.ip if sa.ip not in ("", "0.0.0.0", "::", "*", "localhost") else "127.0.0.1"
        if ":" in ip:
            ip = f"[{ip}]"
        base = sa.base_url if sa.base_url.endswith("/") else sa.base_url + "/"
        return f"{scheme}://{ip}:{sa.port}{base}jupyter-securellm/v1"

    def initialize_settings(self):
        from ..detect import Redactor, Scanner
        from . import hardening, kernels
        from .broker import Broker

        try:
            self.check_config()
        except ConfigError as exc:
            self._fail(str(exc))

        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        if self.harden_process:
            try:
                ok = hardening.set_non_dumpable()
            except OSError as exc:
                self._fail(f"c.SecureLLM.harden_process: {exc}; set it to False only if you accept the risk.")
            self.log.info("SecureLLM: process marked non-dumpable: %s", ok)

        self.redactor = Redactor(Scanner(), placeholder=self.redaction_placeholder)
        hardening.install_log_filter(self.redactor, extra_loggers=[self.log.name])

        def on_litellm_loaded(_mod):
            hardening.install_log_filter(self.redactor, extra_loggers=[self.log.name])

        def on_secret(value, *_, **__):
            # every value read from Vault joins the redactor (and the DLP scanner) at once
            if value and getattr(self, "broker", None) is not None:
                self.broker.remember_secret(value)
            elif value:
                self.redactor.add_secret(value)

        self.vault = self._make_vault(on_secret)
        self.broker = broker = Broker(
            models=self.models, allowed_hosts=self.allowed_hosts, vault=self.vault, redactor=self.redactor,
            prompt_dlp_mode=self.prompt_dlp_mode, user_secret_paths=self.user_secret_paths,
            request_timeout=self.request_timeout, policy=_make(self.policy_class, self),
            log=self.log, on_litellm_loaded=on_litellm_loaded,
        )

        mkm = self.serverapp.kernel_manager
        tokens = kernels.KernelTokens(is_live=kernels.kernel_is_live(mkm))
        def value_check(value: str) -> bool:
            # known secrets and provider-shaped keys; the fuzzy generic rule could strip PATH-like values
            return any(f.rule_id != "generic-api-key" for f in self.redactor.scanner.scan(value))

        launch = kernels.KernelLaunchService(
            tokens, kernels.EnvSanitizer(self.env_deny_patterns, value_check=value_check),
            url_getter=lambda: self.broker_url or self._default_broker_url(), user=self.owner, log=self.log,
        )
        launch.on_token = broker.remember_secret
        launch.output_relay = kernels.KernelOutputRelay(self.redactor)
        kernels.install(mkm, launch)
        from .terminals import install as install_terminal_env  # terminals: same sanitizer as kernels

        install_terminal_env(self.serverapp, launch.sanitizer, log=self.log)
        self.kernel_tokens = tokens

        self.settings.update({
            "jupyter_securellm_broker": broker,
            "jupyter_securellm_redactor": self.redactor,
            "jupyter_securellm_kernel_tokens": tokens,
            "jupyter_securellm_app": self,
            "jupyter_securellm_max_request_bytes": self.max_request_bytes,
            "jupyter_securellm_version": __version__,
        })
        if self.preload_litellm:
            import threading

            from .broker import import_litellm

            def _preload():
                try:
                    import_litellm()
                    on_litellm_loaded(None)
                except Exception as exc:  # noqa: BLE001 - reported, then the first call retries
                    self.log.warning("SecureLLM: background import of litellm failed: %s", type(exc).__name__)

            threading.Thread(target=_preload, name="securellm-litellm-import", daemon=True).start()

        from .contents import install_save_hook

        install_save_hook(self)

    def initialize_handlers(self):
        from .handlers import default_handlers

        self.handlers.extend(default_handlers)

    async def stop_extension(self):
        broker = getattr(self, "broker", None)
        if broker is not None:
            await broker.aclose()
        close = getattr(getattr(self, "vault", None), "close", None)
        if close is not None:
            close()


def _vault_trait(message: str) -> str:
    """VaultSettings errors name the setting as 'vault_x' or 'secret_cache_ttl'; keep that name."""
    import re

    m = re.search(r"\b(vault_[a-z_]+|secret_cache_ttl)\b", message)
    return m.group(1) if m else "vault_url"


def _make(cls, app):
    from traitlets.config import Configurable

    return cls(parent=app) if isinstance(cls, type) and issubclass(cls, Configurable) else cls()


def _url(trait: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"c.SecureLLM.{trait}: {value!r} is not an http(s) URL with a host.")
