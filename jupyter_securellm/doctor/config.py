"""Server config checks: the `c.SecureLLM.*` values of a deployment.

Validity is decided by the server's own code: the config is loaded with traitlets exactly as
`jupyter server` loads it, a `SecureLLM` app is built from it (trait validation runs on
assignment) and its own `check_config()` runs. The other checks judge values that are valid
but unsafe.
"""
from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

from .core import FAIL, PASS, SKIP, WARN, DoctorError, Result, check


def discover_config_files() -> list[str]:
    """The jupyter_server_config files `jupyter server` would read, lowest priority first."""
    from jupyter_core.paths import jupyter_config_path

    found = []
    for d in reversed(jupyter_config_path()):
        dd = Path(d) / "jupyter_server_config.d"
        if dd.is_dir():
            found += [str(p) for p in sorted(dd.glob("*.json"))]
        for ext in (".json", ".py"):
            p = Path(d) / f"jupyter_server_config{ext}"
            if p.is_file():
                found.append(str(p))
    return found


def load_config(files):
    """A merged traitlets Config from the files; DoctorError if one does not load."""
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

    merged = Config()
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise DoctorError(f"{f}: no such config file")
        loader_cls = JSONFileConfigLoader if p.suffix == ".json" else PyFileConfigLoader
        try:
            merged.merge(loader_cls(p.name, path=str(p.parent)).load_config())
        except ConfigFileNotFound:
            raise DoctorError(f"{f}: no such config file") from None
        except Exception as exc:  # noqa: BLE001 - a config that raises is "cannot run"; the type is enough
            raise DoctorError(f"{f}: does not load ({type(exc).__name__}); run `python {f}` to see why") from None
    return merged


class Loaded:
    """The SecureLLM app built from the deployment's config, or why it could not be built."""

    def __init__(self, ctx):
        self.files = list(ctx.config_files) or discover_config_files()
        self.config = load_config(self.files)
        self.error = None
        self.unknown = []
        self.app = None
        from ..server.app import SecureLLM

        names = set(SecureLLM.class_trait_names(config=True))
        self.unknown = sorted(k for k in self.config.get("SecureLLM", {}) if k not in names)
        try:
            app = SecureLLM(config=self.config)
            check = getattr(app, "check_config", None)
            if check is not None:
                check()
            self.app = app
        except Exception as exc:  # noqa: BLE001 - TraitError / ConfigError: the server's own message
            self.error = str(exc)
            try:
                self.app = SecureLLM(config=self.config)  # for the other checks, when trait types were fine
            except Exception:  # noqa: BLE001
                self.app = None

    @property
    def where(self) -> str:
        return ", ".join(self.files) if self.files else "no config file (defaults)"

    def value(self, name, default=None):
        return getattr(self.app, name, default) if self.app is not None else default

    def has(self, name) -> bool:
        return self.app is not None and name in self.app.trait_names()


def loaded(ctx) -> Loaded:
    return ctx.cached("config", lambda: Loaded(ctx))


def _r(id, status, summary, fix="", details=None):
    return Result(f"config.{id}", status, summary, fix, list(details or []))


@check("config.valid", "config", "c.SecureLLM values are valid")
def valid(ctx):
    c = loaded(ctx)
    if c.error:
        return _r("valid", FAIL, f"the server would refuse to start: {c.error}",
                  "fix the named setting in " + c.where)
    if c.unknown:
        return _r("valid", FAIL, f"unknown setting(s): {', '.join('c.SecureLLM.' + u for u in c.unknown)}",
                  "fix the spelling (traitlets ignores unknown names, so the intended value is not in effect)")
    return _r("valid", PASS, f"the server's own validation accepts {len(c.files)} config file(s)"
              if c.files else "no config file found: the defaults are valid", details=c.files)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@check("config.vault-tls", "config", "Vault over TLS with verification")
def vault_tls(ctx):
    c = loaded(ctx)
    if c.app is None:
        return _r("vault-tls", SKIP, "config not loaded")
    url = c.value("vault_url", "")
    parts = urlsplit(url)
    host = parts.hostname
    if not (c.value("models") or c.value("user_secret_paths")):
        return _r("vault-tls", SKIP, "no models or user secret paths: the server never reads Vault")
    if parts.scheme == "http":
        if is_loopback(host):
            problem = vault_reachable(url)
            return _r("vault-tls", WARN, f"Vault at {url} is plain http on loopback"
                      + (f" and not reachable ({problem})" if problem else " (reachable)"),
                      "fine for a dev server; in production serve Vault over https (c.SecureLLM.vault_url)")
        return _r("vault-tls", FAIL, f"Vault at {url} is plain http: tokens and keys cross the network in clear",
                  "serve Vault over https and set c.SecureLLM.vault_url to the https URL")
    if c.has("vault_verify") and c.value("vault_verify") is False:
        return _r("vault-tls", FAIL, "Vault TLS certificate verification is off (c.SecureLLM.vault_verify = False)",
                  "set c.SecureLLM.vault_ca_cert to the CA file instead of turning verification off")
    problem = vault_reachable(url, c.value("vault_ca_cert") or _requests_ca_bundle())
    if problem and problem.startswith("certificate"):
        return _r("vault-tls", FAIL, f"Vault at {url}: {problem}",
                  "set c.SecureLLM.vault_ca_cert to the CA that signed Vault's certificate")
    if problem:
        return _r("vault-tls", WARN, f"Vault at {url} over https, but not reachable from here ({problem})",
                  "run the doctor where the server runs, or check the network path to Vault")
    return _r("vault-tls", PASS, f"Vault at {url} reachable over https with certificate verification"
              + ("" if not c.value("vault_ca_cert") else f" (CA {c.value('vault_ca_cert')})"))


def _requests_ca_bundle() -> str | None:
    """The CA bundle hvac (requests) verifies Vault with when no vault_ca_cert is set: the same
    environment variables, else certifi's bundle; so the doctor trusts exactly what the server trusts."""
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def vault_reachable(url: str, cafile: str | None = None) -> str | None:
    """None when Vault's health endpoint answers (any HTTP status: sealed and standby answer 5xx/4xx)."""
    import ssl
    import urllib.error
    import urllib.request

    ctx = None
    if url.startswith("https"):
        ctx = ssl.create_default_context(**({"capath": cafile} if cafile and os.path.isdir(cafile) else
                                            {"cafile": cafile} if cafile else {}))
    try:
        urllib.request.urlopen(url.rstrip("/") + "/v1/sys/health", timeout=5, context=ctx).close()
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            return f"certificate not trusted ({exc.reason.verify_message})"
        return type(exc.reason).__name__
    except OSError as exc:
        return type(exc).__name__
    return None


def _model_hosts(models):
    from ..server.egress import PROVIDER_DEFAULT_HOSTS, provider_of, split_host

    out = {}
    for alias, cfg in (models or {}).items():
        if not isinstance(cfg, dict):
            continue
        try:
            if cfg.get("api_base"):
                host, port = split_host(cfg["api_base"])
            else:
                host, port = PROVIDER_DEFAULT_HOSTS.get(provider_of(str(cfg.get("model", ""))) or ""), None
        except ValueError:
            continue
        if host:
            out[alias] = (host, port, str(cfg.get("api_base", "")), bool(cfg.get("allow_http")))
    return out


@check("config.http-models", "config", "no plain-http remote model")
def http_models(ctx):
    c = loaded(ctx)
    if c.app is None:
        return _r("http-models", SKIP, "config not loaded")
    bad, local = [], []
    for alias, (host, port, base, allow_http) in _model_hosts(c.value("models")).items():
        if base.lower().startswith("http://"):
            (local if is_loopback(host) else bad).append(f"{alias}: {base}")
    if bad:
        return _r("http-models", FAIL, f"{len(bad)} model(s) send the provider key over plain http to another host",
                  "use an https api_base; allow_http is meant for a model server on this machine only", bad)
    if local:
        return _r("http-models", PASS, f"{len(local)} plain-http model(s), all on loopback", details=local)
    return _r("http-models", PASS, "every model endpoint is https")


@check("config.model-tls", "config", "model TLS certificates verified")
def model_tls(ctx):
    c = loaded(ctx)
    if c.app is None:
        return _r("model-tls", SKIP, "config not loaded")
    off, own_ca = [], []
    for alias, cfg in (c.value("models") or {}).items():
        if not isinstance(cfg, dict):
            continue
        if cfg.get("ssl_verify") is False:
            off.append(f"{alias}: {cfg.get('api_base') or cfg.get('model')}")
        elif cfg.get("ca_bundle"):
            own_ca.append(f"{alias}: CA {cfg['ca_bundle']}")
    if off:
        return _r("model-tls", FAIL, f"{len(off)} model(s) set ssl_verify False: their certificate is not checked, so "
                  "whoever intercepts or impersonates that host receives the provider key",
                  'remove "ssl_verify": False and set "ca_bundle" to the CA that signed the model server\'s '
                  "certificate", off)
    if own_ca:
        return _r("model-tls", PASS, f"every https model is verified; {len(own_ca)} with its own CA", details=own_ca)
    return _r("model-tls", PASS, "every https model is verified against the system trust store")


@check("config.allowed-hosts", "config", "allowed_hosts no broader than the models need")
def allowed_hosts(ctx):
    c = loaded(ctx)
    if c.app is None:
        return _r("allowed-hosts", SKIP, "config not loaded")
    from ..server.egress import host_allowed

    hosts = list(c.value("allowed_hosts") or [])
    needed = list(_model_hosts(c.value("models")).values())
    if not needed:
        return _r("allowed-hosts", SKIP, "no models configured: no key is ever sent")
    extra = [h for h in hosts
             if not any(host_allowed(host, port, [h]) for host, port, _, _ in needed)]
    wild = [h for h in hosts if h.startswith("*") and h not in extra]
    if any(h.strip() in ("*", "*.*") for h in hosts):
        return _r("allowed-hosts", FAIL, "allowed_hosts lets provider keys go to any host",
                  "list only the hosts of c.SecureLLM.models")
    if extra:
        return _r("allowed-hosts", WARN, f"{len(extra)} allowed host(s) that no model uses",
                  "remove them from c.SecureLLM.allowed_hosts (each is a place a key may be sent)", extra)
    if wild:
        return _r("allowed-hosts", WARN, f"wildcard host(s) {', '.join(wild)} allow more than the models need",
                  "list the exact host names of c.SecureLLM.models")
    return _r("allowed-hosts", PASS, f"{len(hosts)} allowed host(s), each used by a model")


@check("config.save-hook", "config", "save hook blocks or redacts")
def save_hook(ctx):
    c = loaded(ctx)
    mode = c.value("save_hook_mode")
    if mode is None:
        return _r("save-hook", SKIP, "config not loaded")
    if mode == "warn":
        return _r("save-hook", WARN, "the save hook only warns: notebooks holding a secret are written to disk",
                  "c.SecureLLM.save_hook_mode = 'redact' (or 'block')")
    return _r("save-hook", PASS, f"save_hook_mode = {mode!r}")


@check("config.dlp", "config", "prompt DLP on")
def dlp(ctx):
    c = loaded(ctx)
    mode = c.value("prompt_dlp_mode")
    if mode is None:
        return _r("dlp", SKIP, "config not loaded")
    if mode in ("off", "none", "warn", "log"):
        return _r("dlp", FAIL, f"prompt DLP is {mode!r}: secrets in prompts go to the provider",
                  "c.SecureLLM.prompt_dlp_mode = 'block' (or 'redact')")
    return _r("dlp", PASS, f"prompt_dlp_mode = {mode!r}")


@check("config.hardening", "config", "process hardening on")
def hardening(ctx):
    c = loaded(ctx)
    on = c.value("harden_process")
    if on is None:
        return _r("hardening", SKIP, "config not loaded")
    if not on:
        return _r("hardening", FAIL, "harden_process is off: kernels of the same user can read the server's memory "
                  "and environment", "c.SecureLLM.harden_process = True")
    return _r("hardening", PASS, "harden_process = True (PR_SET_DUMPABLE 0 at start-up)")


def _writable_by_others(path: Path) -> list[str]:
    """Why users other than the server's could write `path` (or create it), if they can."""
    why = []
    target = path if path.exists() else path.parent
    try:
        st = target.stat()
    except OSError:
        return why
    if st.st_mode & stat.S_IWOTH:
        why.append(f"{target} is world-writable")
    if st.st_mode & stat.S_IWGRP:
        why.append(f"{target} is group-writable")
    if st.st_uid != os.geteuid():
        why.append(f"{target} belongs to uid {st.st_uid}, not the server's uid {os.geteuid()}")
    return why


@check("config.audit", "config", "audit log on and not writable by users")
def audit(ctx):
    c = loaded(ctx)
    if c.app is None:
        return _r("audit", SKIP, "config not loaded")
    path = c.value("audit_log_path")
    if not path:
        return _r("audit", WARN, "audit is off: no record of who called which model",
                  "set c.SecureLLM.audit_log_path to a file only the server's user can write")
    why = _writable_by_others(Path(os.path.expanduser(path)))
    if why:
        return _r("audit", FAIL, "the audit log can be rewritten by someone other than the server",
                  f"chown the file to the server's user and chmod 600 {path}", why)
    hint = ""
    if c.value("broker_mode", "local") != "hub-service":
        hint = " (kernels run as the same user here; only hub-service mode keeps the log out of their reach)"
    return _r("audit", PASS if not hint else WARN, f"audit log {path}, writable by the server's user only" + hint,
              "" if not hint else "run the broker as a Hub service under its own uid (docs/hub.md)")


@check("config.credential-files", "config", "Vault credential files private")
def credential_files(ctx):
    c = loaded(ctx)
    if c.app is None:
        return _r("credential-files", SKIP, "config not loaded")
    files = [(t, c.value(t)) for t in ("vault_token_path", "vault_approle_secret_id_path", "vault_jwt_path",
                                       "vault_client_key") if c.value(t)]
    if not files:
        return _r("credential-files", SKIP, "no Vault credential file configured")
    bad, ok = [], []
    for trait, p in files:
        path = Path(os.path.expanduser(p))
        try:
            st = path.stat()
        except OSError as exc:
            bad.append(f"c.SecureLLM.{trait}: {path}: cannot stat ({exc.strerror})")
            continue
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            bad.append(f"c.SecureLLM.{trait}: {path} has mode {stat.S_IMODE(st.st_mode):o}: readable by other users")
        elif st.st_uid != os.geteuid():
            bad.append(f"c.SecureLLM.{trait}: {path} belongs to uid {st.st_uid}, not the server's uid {os.geteuid()}")
        else:
            ok.append(f"c.SecureLLM.{trait}: {path} mode {stat.S_IMODE(st.st_mode):o}")
    if bad:
        return _r("credential-files", FAIL, f"{len(bad)} Vault credential file(s) readable by other users",
                  "chmod 600 each file, owned by the server's user", bad + ok)
    return _r("credential-files", PASS, f"{len(ok)} credential file(s), readable by the server's user only", details=ok)
