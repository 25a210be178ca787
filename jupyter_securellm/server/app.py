"""The SecureLLM Jupyter server extension: configuration, start-up checks and wiring.

Every `c.SecureLLM.*` trait (docs/architecture.md lists the public ones) lives here with its help
text. A misconfigured broker must not start half-way: kernels would then launch with an
unsanitized environment. So each trait checks its own value (traitlets `@validate`), the few rules
that span traits run once at start-up (`check_config`), and every error stops the server with a
message that starts with the trait's name.
"""
from __future__ import annotations

import getpass
import os
from urllib.parse import urlsplit

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Enum, Float, Int, List, TraitError, Type, Unicode, validate

from .._version import __version__
from ..vault import VaultClient, VaultConfigError, VaultError, VaultSettings
from .egress import DEFAULT_ALLOWED_HOSTS, host_allowed
from .governor import Governor
from .kernels import DEFAULT_ENV_DENY_PATTERNS
from .request import ModelConfig


class ConfigError(TraitError):
    """A `c.SecureLLM.*` value that cannot work; the message starts with the trait's name."""


class SecureLLM(ExtensionApp):
    """Brokers LLM calls with keys from Vault, scrubs saved notebooks, audits every call."""

    name = "jupyter_securellm"
    _hub_groups = None  # HubGroups of the owner, made on first use (on a Hub)

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
    vault_ca_cert = Unicode(
        "", help="PEM file (or directory) of the CA that signed Vault's TLS certificate, for an https "
                 "vault_url behind an internal CA; empty: the system trust store.",
    ).tag(config=True)
    vault_client_cert = Unicode(
        "", help="PEM client certificate for mutual TLS with Vault (with vault_client_key); empty: none.",
    ).tag(config=True)
    vault_client_key = Unicode(
        "", help="PEM private key of vault_client_cert (unencrypted, mode 0600); empty: none.",
    ).tag(config=True)
    vault_timeout = Float(
        5.0, help="Seconds to wait for Vault to answer each request (login, read) before failing closed with "
                  "503 vault_unavailable; more than 0, at most 120. Raise it for a slow or distant Vault.",
    ).tag(config=True)
    secret_cache_ttl = Float(
        300.0, help="Seconds a secret read from Vault stays cached in server memory (0 disables the cache)."
    ).tag(config=True)

    # -- models and egress ---------------------------------------------------------------------
    models = Dict(
        {},
        help='Model aliases: {"alias": {"model": <litellm model>, "secret_path": <KV path, may contain {user}>, '
             '"secret_key": <field>, "api_base": <optional URL>, "allow_http": <optional bool, needed for a '
             'plain-http api_base>, "ca_bundle": <optional PEM file of the CA that signed an https api_base\'s '
             'certificate>, "ssl_verify": <optional; False turns certificate checks off, loudly>, "stream_usage": <optional, '
             'default True: ask the provider for a stream\'s usage, for budgets; False for a server that refuses '
             'stream_options>}}. Kernels only ever see the aliases.',
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

    # -- JupyterHub (docs/jupyterhub.md) ------------------------------------------------------------
    broker_mode = Enum(
        ["local", "hub-service"], "local",
        help="'local': this server runs the broker itself (tier 2: the key lives in this server's memory). "
             "'hub-service': this server holds no key and no Vault credential and forwards every broker call "
             "to the JupyterHub service hub_service_name, as its user (tier 3).",
    ).tag(config=True)
    hub_service_name = Unicode(
        "securellm", help="Name of the JupyterHub service running `jupyter-securellm broker` (hub-service mode).",
    ).tag(config=True)
    hub_service_url = Unicode(
        "", help="Base URL of the broker service (its JupyterHub `url`, e.g. http://securellm-broker:8000). "
                 "Empty: looked up in the Hub API (needs read:services!service=<name> on the server role).",
    ).tag(config=True)
    kernel_token_peer_check = Bool(
        True, help="Refuse a kernel token sent over loopback by a process of another Unix user (several "
                   "users' servers on one machine). Turn off only if kernel calls reach this server through "
                   "a local proxy running as another user.",
    ).tag(config=True)
    hub_groups_ttl = Float(
        60.0, help="Seconds the Hub groups of a user stay cached (they feed policy input.groups and budgets).",
    ).tag(config=True)

    # -- governance: policy, budgets, audit, alerts (docs/policy.md, docs/budgets.md, docs/audit.md) ----
    policy_paths = List(
        Unicode(), [],
        help="Rego policy files or folders; the decision is data.jupyter_securellm.authz.deny (a set of reasons; "
             "empty allows). Edited files are reloaded. Empty: the shipped default (configured models only).",
    ).tag(config=True)
    policy_timezone = Unicode(
        "UTC", help="IANA time zone of the policy's input.time and of budget days and months (e.g. Europe/Paris)."
    ).tag(config=True)
    budgets = Dict(
        {}, help='Spend caps: {"default": {...}, "groups": {name: {...}}, "users": {name: {...}}}, each with '
                 "daily_tokens, monthly_tokens, daily_usd, monthly_usd, rpm. User > group > default; several "
                 "groups: the most generous wins. Empty: no budgets.",
    ).tag(config=True)
    prices = Dict(
        {}, help='Per-model price overrides or additions, by alias or litellm model: {"input_cost_per_token": '
                 'USD, "output_cost_per_token": USD}. Others come from litellm\'s local price map.',
    ).tag(config=True)
    budget_lease_seconds = Float(
        300.0, help="Seconds a budget reservation counts before it is settled; a crashed call's reservation "
                    "stops counting after this lease.",
    ).tag(config=True)
    audit_log_path = Unicode(
        "", help="Hash-chained JSONL audit log (one record per decision and call, no prompts or secrets); "
                 "empty disables it. Calls are refused while it cannot be written.",
    ).tag(config=True)
    audit_rotate_bytes = Int(100 * 1024 * 1024, help="Rotate the audit log past this size (and each UTC day).").tag(config=True)
    audit_hmac_key_path = Unicode(
        "", help="File (chmod 600) with the key of the HMAC-SHA256 fingerprints of prompts and answers in the audit "
                 "log; empty: no fingerprints (or audit_hmac_vault_path).",
    ).tag(config=True)
    audit_hmac_vault_path = Unicode(
        "", help="KV path in Vault whose field 'key' holds the audit HMAC key (instead of audit_hmac_key_path)."
    ).tag(config=True)
    audit_transit_key = Unicode(
        "", help="Vault/OpenBao transit key (type ed25519) that signs audit checkpoints; empty: no signatures."
    ).tag(config=True)
    audit_transit_mount = Unicode("transit", help="Mount point of the transit engine.").tag(config=True)
    audit_checkpoint_every = Int(1000, help="Sign the audit chain head every N records.").tag(config=True)
    audit_checkpoint_seconds = Float(300.0, help="... or every M seconds when records were added.").tag(config=True)
    alert_webhook_url = Unicode(
        "", help="URL that receives each new anomaly alert as a JSON POST; empty: none."
    ).tag(config=True)
    alert_hours = Dict(
        {}, help='Usual hours for the outside-hours alert, in policy_timezone: {"start": 8, "end": 19, '
                 '"weekdays": [1, 2, 3, 4, 5]} (ISO weekdays); empty: no outside-hours alert.',
    ).tag(config=True)
    database_url = Unicode(
        "", help="SQLAlchemy URL of the budget ledger shared by many servers (postgresql+psycopg://...); empty "
                 "uses SQLite under the runtime dir.",
    ).tag(config=True)
    governor_classes = List(
        Type(klass=Governor), [],
        help="Governor classes (subclasses of jupyter_securellm.server.governor.Governor), in order: each "
             "authorizes, reserves, settles and records every broker call (policy, budgets, audit). Each is "
             "built as cls(parent=app). Default: none, every call is allowed.",
    ).tag(config=True)
    vault_client_class = Type(
        VaultClient, klass=VaultClient,
        help="Vault client class, built as cls(VaultSettings, on_secret=callable) (a subclass can reproduce "
             "error paths a real Vault cannot produce on demand).",
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

    # -- per-trait checks (traitlets runs them whenever a value is set, config files included) -------
    @validate("vault_url", "broker_url")
    def _valid_url(self, proposal):
        value = proposal["value"]
        if value or proposal["trait"].name == "vault_url":
            _url(proposal["trait"].name, value)
        return value

    @validate("vault_ca_cert", "vault_client_cert", "vault_client_key")
    def _valid_tls_file(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        if not value:
            return value
        path = os.path.expanduser(value)
        dir_ok = name == "vault_ca_cert" and os.path.isdir(path)  # a CA directory (c_rehash) is fine
        if not (os.path.isfile(path) or dir_ok):
            raise ConfigError(f"c.SecureLLM.{name}: {value!r} is not a file; give the path of a PEM file.")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"c.SecureLLM.{name}: {value!r} is not readable by this server's user.")
        return value

    @validate("vault_kv_mount")
    def _valid_kv_mount(self, proposal):
        if not proposal["value"].strip("/"):
            raise ConfigError("c.SecureLLM.vault_kv_mount: must name the KV v2 mount, e.g. 'secret'.")
        return proposal["value"]

    @validate("secret_cache_ttl")
    def _valid_ttl(self, proposal):
        if proposal["value"] < 0:
            raise ConfigError("c.SecureLLM.secret_cache_ttl: must be >= 0 seconds.")
        return proposal["value"]

    @validate("vault_timeout")
    def _valid_vault_timeout(self, proposal):
        from ..vault.settings import MAX_TIMEOUT

        if not 0 < proposal["value"] <= MAX_TIMEOUT:
            raise ConfigError(f"c.SecureLLM.vault_timeout: must be more than 0 and at most {MAX_TIMEOUT:g} seconds "
                              f"(each Vault request holds a broker worker thread that long), got {proposal['value']!r}.")
        return proposal["value"]

    @validate("request_timeout", "max_request_bytes")
    def _valid_positive(self, proposal):
        if proposal["value"] <= 0:
            raise ConfigError(f"c.SecureLLM.{proposal['trait'].name}: must be > 0.")
        return proposal["value"]

    @validate("allowed_hosts")
    def _valid_hosts(self, proposal):
        for h in proposal["value"]:
            if not h.strip() or "/" in h or "@" in h:
                raise ConfigError(f"c.SecureLLM.allowed_hosts: {h!r} is not a host; use 'host', 'host:port' or '*.domain'.")
        return proposal["value"]

    @validate("env_deny_patterns", "user_secret_paths")
    def _valid_globs(self, proposal):
        if any(not p.strip().strip("/") for p in proposal["value"]):
            raise ConfigError(f"c.SecureLLM.{proposal['trait'].name}: empty pattern.")
        return proposal["value"]

    @validate("redaction_placeholder")
    def _valid_placeholder(self, proposal):
        try:
            proposal["value"].format(rule_id="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"c.SecureLLM.redaction_placeholder: only {{rule_id}} may be used ({exc}).") from None
        return proposal["value"]

    @validate("models")
    def _valid_models(self, proposal):
        for alias, value in proposal["value"].items():
            try:
                ModelConfig.from_trait(alias, value)
            except ValueError as exc:
                msg = str(exc)
                raise ConfigError(f"c.SecureLLM.models{msg}" if msg.startswith("[") else
                                  f"c.SecureLLM.models: {msg}") from None
        return proposal["value"]

    @validate("budgets")
    def _valid_budgets(self, proposal):
        from ..governance.budget import BudgetConfigError, validate_budgets

        try:
            validate_budgets(proposal["value"])
        except BudgetConfigError as exc:
            raise ConfigError(f"c.SecureLLM.{exc}") from None
        return proposal["value"]

    @validate("prices")
    def _valid_prices(self, proposal):
        from ..governance.prices import validate_overrides

        try:
            validate_overrides(proposal["value"])
        except ValueError as exc:
            raise ConfigError(f"c.SecureLLM.{exc}") from None
        return proposal["value"]

    @validate("policy_timezone")
    def _valid_timezone(self, proposal):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(proposal["value"] or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"c.SecureLLM.policy_timezone: {proposal['value']!r} is not an IANA time zone "
                              "(e.g. 'Europe/Paris', 'UTC').") from None
        return proposal["value"]

    @validate("alert_hours")
    def _valid_alert_hours(self, proposal):
        h = proposal["value"]
        if h and not (set(h) <= {"start", "end", "weekdays"}
                      and all(isinstance(h.get(k, 0), int) and 0 <= h.get(k, 0) <= 24 for k in ("start", "end"))
                      and all(isinstance(d, int) and 1 <= d <= 7 for d in h.get("weekdays", [1]))):
            raise ConfigError('c.SecureLLM.alert_hours: use {"start": 8, "end": 19, "weekdays": [1, 2, 3, 4, 5]} '
                              "(hours 0-24, ISO weekdays 1-7).")
        return h

    @validate("alert_webhook_url")
    def _valid_webhook(self, proposal):
        if proposal["value"]:
            _url("alert_webhook_url", proposal["value"])
        return proposal["value"]

    def model_configs(self) -> dict[str, ModelConfig]:
        """The checked, frozen model configs, built once at start-up."""
        return {alias: ModelConfig.from_trait(alias, value) for alias, value in self.models.items()}

    def check_config(self) -> None:
        """The rules that span traits; raise ConfigError naming the trait to change."""
        if self.hub_service_url:
            _url("hub_service_url", self.hub_service_url)
        if self.broker_mode == "hub-service":
            if not self.hub_service_name.strip() or "/" in self.hub_service_name:
                raise ConfigError("c.SecureLLM.hub_service_name: must name the JupyterHub service, e.g. 'securellm'.")
            from ..hub.identity import hub_env

            if hub_env() is None:
                raise ConfigError("c.SecureLLM.broker_mode: 'hub-service' needs a JupyterHub single-user server "
                                  "(JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN are not set); use 'local' here.")
            if self.models:
                self.log.warning("SecureLLM: c.SecureLLM.models is ignored in hub-service mode: the broker service "
                                 "%r holds the models and keys.", self.hub_service_name)
            return  # no Vault client and no model in this server: nothing else to check
        if bool(self.vault_client_cert) != bool(self.vault_client_key):
            missing = "vault_client_key" if self.vault_client_cert else "vault_client_cert"
            raise ConfigError(f"c.SecureLLM.{missing}: mutual TLS needs both vault_client_cert and "
                              "vault_client_key (or neither); set the missing one.")
        try:
            self.vault_settings().validate()  # the Vault auth rules live there, and only there
        except VaultConfigError as exc:
            raise ConfigError(f"c.SecureLLM.{_vault_trait(str(exc))}: {exc}") from None
        models = self.model_configs()
        for alias, cfg in models.items():
            host, port = cfg.endpoint
            if not host_allowed(host, port, self.allowed_hosts):
                label = f"{host}:{port}" if port else host
                raise ConfigError(f"c.SecureLLM.allowed_hosts: c.SecureLLM.models[{alias!r}] sends its key to "
                                  f"{label}, which is not allowlisted; add it or change the model.")
            try:
                cfg.check_transport()
            except ValueError as exc:
                raise ConfigError(f"c.SecureLLM.models{exc}") from None
        tls: dict = {}
        for alias, cfg in models.items():  # one TLS setting per endpoint: the pooled client keys it by origin
            first = tls.setdefault(cfg.origin, (alias, cfg.tls_verify))
            if first[1] != cfg.tls_verify:
                raise ConfigError(f"c.SecureLLM.models[{alias!r}]: it shares the endpoint {cfg.api_base or cfg.origin[1]} "
                                  f"with c.SecureLLM.models[{first[0]!r}] but not its ca_bundle/ssl_verify; give "
                                  "both the same TLS settings.")
            if cfg.tls_verify is False:
                self.log.warning("SecureLLM: SECURITY WARNING: c.SecureLLM.models[%r] sets ssl_verify False: the "
                                 "certificate of %s is NOT checked, so anyone who can intercept or impersonate "
                                 "that host receives the provider key. Set \"ca_bundle\" to the CA that signed "
                                 "it instead (jupyter-securellm doctor flags this).", alias, cfg.api_base)
        import fnmatch

        for g in self.user_secret_paths:
            for alias, cfg in models.items():
                if fnmatch.fnmatchcase(cfg.secret_path.strip("/"), g.strip("/")):
                    self.log.warning("SecureLLM: c.SecureLLM.user_secret_paths glob %r matches the key path of "
                                     "model %r; provider keys are never returned, narrow the glob.", g, alias)

    def vault_settings(self) -> VaultSettings:
        """The Vault client's settings from the vault_* traits (a field VaultSettings lacks is a TypeError)."""
        return VaultSettings(
            url=self.vault_url, namespace=self.vault_namespace or None, auth_method=self.vault_auth_method,
            token_path=os.path.expanduser(self.vault_token_path) if self.vault_token_path else None,
            approle_role_id=self.vault_approle_role_id or None,
            approle_secret_id_path=self.vault_approle_secret_id_path or None,
            jwt_path=self.vault_jwt_path or None, role=self.vault_role or None,
            kv_mount=self.vault_kv_mount, secret_cache_ttl=self.secret_cache_ttl, timeout=self.vault_timeout,
            ca_cert=_path_or_none(self.vault_ca_cert), client_cert=_path_or_none(self.vault_client_cert),
            client_key=_path_or_none(self.vault_client_key),
        )

    def _make_vault(self, on_secret) -> VaultClient:
        try:
            client = self.vault_client_class(self.vault_settings(), on_secret=on_secret)
        except VaultConfigError as exc:
            self._fail(f"c.SecureLLM.{_vault_trait(str(exc))}: {exc}")
        self._first_vault_login(client)
        client.start_background_renewal()
        return client

    def _first_vault_login(self, client) -> None:
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
        except VaultConfigError as exc:
            self._fail(f"c.SecureLLM.{_vault_trait(str(exc))}: {exc}")
        except VaultError as exc:
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

    def build_broker(self):
        """The redactor, the Vault client and the broker, from the `c.SecureLLM.*` traits.

        The one entry point shared by the server extension and the JupyterHub service
        (`jupyter-securellm broker`), so both run the same broker with the same config names.
        """
        from ..detect import Redactor, Scanner
        from . import hardening
        from .broker import Broker

        self.redactor = Redactor(Scanner(), placeholder=self.redaction_placeholder)
        hardening.install_log_filter(self.redactor, extra_loggers=[self.log.name])

        def on_litellm_loaded(_mod):
            hardening.install_log_filter(self.redactor, extra_loggers=[self.log.name])

        self._on_litellm_loaded = on_litellm_loaded

        def on_secret(value, *_, **__):
            # every value read from Vault joins the redactor (and the DLP scanner) at once
            if value and getattr(self, "broker", None) is not None:
                self.broker.remember_secret(value)
            elif value:
                self.redactor.add_secret(value)

        self.vault = self._make_vault(on_secret)
        self.broker = Broker(
            models=self.model_configs(), allowed_hosts=self.allowed_hosts, vault=self.vault,
            redactor=self.redactor, prompt_dlp_mode=self.prompt_dlp_mode,
            user_secret_paths=self.user_secret_paths, request_timeout=self.request_timeout,
            governors=[self._governance()] + [cls(parent=self) for cls in self.governor_classes],
            log=self.log, on_litellm_loaded=on_litellm_loaded,
        )
        return self.broker

    def preload(self) -> None:
        """Import litellm in a background thread, so the first call is fast (local broker only)."""
        import threading

        from .provider import import_litellm

        def _preload():
            try:
                import_litellm()
                self._on_litellm_loaded(None)
            except Exception as exc:  # noqa: BLE001 - reported, then the first call retries
                self.log.warning("SecureLLM: background import of litellm failed: %s", type(exc).__name__)

        threading.Thread(target=_preload, name="securellm-litellm-import", daemon=True).start()

    def build_forwarder(self):
        """hub-service mode: a redactor (save hook, kernel env) and a forwarder; no Vault, no key."""
        from ..detect import Redactor, Scanner
        from ..hub.forward import HubServiceBroker
        from ..hub.identity import hub_env
        from . import hardening

        self.redactor = Redactor(Scanner(), placeholder=self.redaction_placeholder)
        hardening.install_log_filter(self.redactor, extra_loggers=[self.log.name])
        self.vault = None
        env = hub_env()
        self.broker = HubServiceBroker(service_name=self.hub_service_name, service_url=self.hub_service_url,
                                       api_url=env["api_url"], token=env["token"], redactor=self.redactor,
                                       request_timeout=self.request_timeout, log=self.log)
        self.log.info("SecureLLM: hub-service mode: broker calls go to the JupyterHub service %r; no Vault client "
                      "in this server", self.hub_service_name)
        return self.broker

    async def caller_groups(self) -> tuple:
        """The owner's Hub groups (policy input.groups, budget groups); () when not on a Hub."""
        if self.broker_mode == "hub-service":
            return ()  # the service reads them from the Hub itself
        from ..hub.identity import HubGroups, hub_env

        if self._hub_groups is None:
            env = hub_env()
            if env is None:
                return ()
            self._hub_groups = HubGroups(env["api_url"], env["token"], ttl=self.hub_groups_ttl, self_only=True)
        return await self._hub_groups.get(self.owner)

    def initialize_settings(self):
        from . import hardening, kernels

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

        broker = self.build_forwarder() if self.broker_mode == "hub-service" else self.build_broker()

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
            "jupyter_securellm_governance": getattr(self, "governance", None),  # None when forwarding
            "jupyter_securellm_version": __version__,
        })
        if self.preload_litellm and self.broker_mode == "local":
            self.preload()

        from .contents import install_save_hook

        self.settings["jupyter_securellm_save_hook"] = install_save_hook(self)  # the scan endpoint reuses it

    def initialize_handlers(self):
        from .handlers import default_handlers

        self.handlers.extend(default_handlers)

    def _governance(self):
        """Policy, budgets, audit, alerts and metrics: the first governor (server/governance.py)."""
        from ..governance.audit import AuditUnavailable
        from .governance import GovernanceGovernor

        try:
            self.governance = GovernanceGovernor(parent=self)
        except (OSError, ValueError, AuditUnavailable) as exc:
            self._fail(f"governance: {exc}")
        return self.governance

    async def stop_extension(self):
        broker = getattr(self, "broker", None)
        if broker is not None:
            await broker.aclose()
        governance = getattr(self, "governance", None)
        if governance is not None:
            governance.close()
        close = getattr(getattr(self, "vault", None), "close", None)
        if close is not None:
            close()


def _path_or_none(value: str) -> str | None:
    return os.path.expanduser(value) if value else None


def _vault_trait(message: str) -> str:
    """VaultSettings errors name the setting as 'vault_x' or 'secret_cache_ttl'; keep that name."""
    import re

    m = re.search(r"\b(vault_[a-z_]+|secret_cache_ttl)\b", message)
    return m.group(1) if m else "vault_url"


def _url(trait: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"c.SecureLLM.{trait}: {value!r} is not an http(s) URL with a host.")
