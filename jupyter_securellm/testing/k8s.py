"""A stand-in for the Kubernetes API's TokenReview endpoint, for testing Vault's kubernetes auth.

Why: OpenBao's kubernetes auth method checks every login JWT by calling the cluster's
``POST /apis/authentication.k8s.io/v1/tokenreviews`` (with ``token_reviewer_jwt`` as its
bearer). There is no Kubernetes here, so this small real HTTPS server speaks that one endpoint
with the real wire format, and OpenBao's real plugin talks to it:

- It issues service-account JWTs (RS256, signed with a key made at run time, projected-token
  claims: ``kubernetes.io: {namespace, serviceaccount: {name, uid}, pod}``, ``aud``, ``exp``).
- A review of a token it issued (not revoked, not expired, audience matching) answers
  ``201`` with ``status.authenticated: true`` and the user
  ``system:serviceaccount:<namespace>:<name>`` with its uid, groups and audiences; anything
  else gets ``authenticated: false`` and an ``error``, as the API server does.
- The caller must present a bearer token it issued to an account allowed to review tokens
  (``system:auth-delegator`` in a real cluster): otherwise ``401`` (unknown bearer) or ``403``
  (no permission), as a ``Status`` object.
- HTTPS with a throw-away CA made at run time (``ca_pem`` goes to ``kubernetes_ca_cert``).
- ``requests`` records every call: path, who the bearer was, the reviewed account and the
  verdict, and SHA-256 fingerprints of the tokens, never the tokens themselves.

It is a stand-in, not Kubernetes: no RBAC beyond the review permission, no other resources.
"""
from __future__ import annotations

import hashlib
import json
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .openbao import JwtIssuer, make_tls_files

__all__ = ["KubernetesAPI", "ServiceAccount", "configure_openbao", "TOKENREVIEW_PATH"]

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ServiceAccount:
    name: str
    namespace: str
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@dataclass
class _Issued:
    account: ServiceAccount
    audiences: list
    expires: float
    jti: str
    pod: dict
    can_review: bool
    revoked: bool = False


class KubernetesAPI:
    """The TokenReview stand-in on 127.0.0.1 and a free port; a context manager."""

    def __init__(self, workdir: str | Path | None = None, *, tls: bool = True,
                 issuer: str = DEFAULT_AUDIENCE, audiences=(DEFAULT_AUDIENCE,)):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="k8s-standin-"))
        self.tls = tls
        self.audiences = list(audiences)  # the API server's own audiences (used when a review names none)
        self._signer = JwtIssuer(issuer=issuer)
        self._issued: dict[str, _Issued] = {}  # fingerprint -> what it was issued for
        self._lock = threading.Lock()
        self.requests: list[dict] = []
        self.ca_cert: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- tokens --------------------------------------------------------------------------
    def issue_token(self, name: str, namespace: str = "default", *, audiences=None, ttl: int = 3600,
                    can_review: bool = False, account: ServiceAccount | None = None) -> str:
        """A signed projected service-account token for ``namespace/name`` (a new account uid
        unless ``account`` is given). ``can_review``: may call the TokenReview API."""
        sa = account or ServiceAccount(name, namespace)
        aud = list(audiences or self.audiences)
        pod = {"name": f"{sa.name}-{uuid.uuid4().hex[:5]}", "uid": str(uuid.uuid4())}
        claims = {"kubernetes.io": {"namespace": sa.namespace, "pod": pod,
                                    "serviceaccount": {"name": sa.name, "uid": sa.uid}}}
        token = self._signer.mint(sa.username, aud=aud, ttl=ttl, **claims)
        payload = json.loads(_b64d(token.split(".")[1]))
        with self._lock:
            self._issued[fingerprint(token)] = _Issued(sa, aud, float(payload["exp"]), payload["jti"], pod,
                                                       can_review)
        return token

    def reviewer_token(self, name: str = "vault-auth", namespace: str = "vault") -> str:
        """A token for the account Vault uses as ``token_reviewer_jwt`` (auth-delegator)."""
        return self.issue_token(name, namespace, can_review=True)

    def revoke(self, token: str) -> None:
        """The token stops authenticating (as when its pod or service account is deleted)."""
        with self._lock:
            self._issued[fingerprint(token)].revoked = True

    def account_of(self, token: str) -> ServiceAccount:
        return self._issued[fingerprint(token)].account

    @property
    def public_pem(self) -> str:
        """The signing key, for Vault's optional ``pem_keys``."""
        return self._signer.public_pem

    def _valid(self, token: str):
        """(_Issued, None) if the token authenticates, else (None, the API server's kind of error)."""
        with self._lock:
            entry = self._issued.get(fingerprint(token)) if token else None
        if entry is None:
            return None, "[invalid bearer token, token lookup failed]"
        if entry.revoked:
            return None, "[invalid bearer token, service account token has been invalidated]"
        if entry.expires < time.time():
            return None, "[invalid bearer token, service account token has expired]"
        return entry, None

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_pem(self) -> str | None:
        return Path(self.ca_cert).read_text() if self.ca_cert else None

    def start(self) -> "KubernetesAPI":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        if self.tls:
            ca, cert, key = make_tls_files(self.workdir / "tls")
            self.ca_cert = ca
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="k8s-tokenreview", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "KubernetesAPI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reviews(self) -> list[dict]:
        """The recorded TokenReview calls that got past authorization."""
        return [r for r in self.requests if r.get("reviewed") is not None]


def _b64d(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _handler(api: KubernetesAPI):
    class Handler(BaseHTTPRequestHandler):
        server_version = "k8s-tokenreview-standin"

        def log_message(self, *args):  # quiet; ``api.requests`` is the record
            pass

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            api.requests.append({"method": "GET", "path": self.path, "code": 404})
            self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))

        def do_POST(self):
            rec = {"method": "POST", "path": self.path, "reviewer": None, "reviewed": None}
            api.requests.append(rec)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.split("?")[0] != TOKENREVIEW_PATH:
                rec["code"] = 404
                return self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
            auth = self.headers.get("Authorization", "")
            bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            caller, _ = api._valid(bearer)
            if caller is None:
                rec["code"] = 401
                return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            rec["reviewer"] = caller.account.username
            if not caller.can_review:
                rec["code"] = 403
                return self._send(403, _status(
                    403, "Forbidden",
                    f'tokenreviews.authentication.k8s.io is forbidden: User "{caller.account.username}" cannot '
                    'create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope'))
            try:
                review = json.loads(body or b"{}")
                spec = review.get("spec") or {}
                token = spec.get("token") or ""
                wanted = list(spec.get("audiences") or [])
                if review.get("kind", "TokenReview") != "TokenReview":
                    raise ValueError("kind")
            except (ValueError, AttributeError):
                rec["code"] = 400
                return self._send(400, _status(400, "BadRequest", "the body is not a TokenReview"))
            entry, error = api._valid(token)
            rec.update(token_fingerprint=fingerprint(token) if token else None, audiences=wanted)
            if entry is not None:
                target = wanted or api.audiences
                granted = [a for a in target if a in entry.audiences]
                if not granted:
                    entry, error = None, (f"[invalid bearer token, token audiences {json.dumps(entry.audiences)} "
                                          f"is invalid for the target audiences {json.dumps(target)}]")
            if entry is None:
                status = {"user": {}, "error": error}
                rec["reviewed"] = {"authenticated": False}
            else:
                sa = entry.account
                status = {
                    "authenticated": True,
                    "user": {
                        "username": sa.username, "uid": sa.uid,
                        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa.namespace}",
                                   "system:authenticated"],
                        "extra": {"authentication.kubernetes.io/credential-id": [f"JTI={entry.jti}"],
                                  "authentication.kubernetes.io/pod-name": [entry.pod["name"]],
                                  "authentication.kubernetes.io/pod-uid": [entry.pod["uid"]]},
                    },
                    "audiences": granted,
                }
                rec["reviewed"] = {"authenticated": True, "username": sa.username}
            rec["code"] = 201
            # The API server echoes the spec (token included) back to the reviewer, as here.
            self._send(201, {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                             "metadata": {"creationTimestamp": None}, "spec": spec, "status": status})

    return Handler


def configure_openbao(bao, api: KubernetesAPI, role: str, policies: list[str], *,
                      service_account: str, namespace: str, mount: str = "kubernetes",
                      audience: str | None = None, reviewer_jwt: str | None = None,
                      pem_keys: bool = False, token_ttl: str = "1h") -> str:
    """Enable OpenBao's kubernetes auth against ``api`` and create ``role`` bound to one account.

    Returns the reviewer JWT given to OpenBao (``token_reviewer_jwt``); a fresh auth-delegator
    token unless ``reviewer_jwt`` is passed.
    """
    bao.enable_auth("kubernetes", mount)
    c = bao.client()
    reviewer = reviewer_jwt or api.reviewer_token()
    config = {"kubernetes_host": api.url, "token_reviewer_jwt": reviewer, "disable_local_ca_jwt": bool(api.ca_pem)}
    if api.ca_pem:
        config["kubernetes_ca_cert"] = api.ca_pem
    if pem_keys:  # OpenBao takes public keys; hvac's configure() would only let certificates through
        config["pem_keys"] = [api.public_pem]
    c.adapter.post(f"/v1/auth/{mount}/config", json=config)
    c.auth.kubernetes.create_role(
        name=role, bound_service_account_names=[service_account],
        bound_service_account_namespaces=[namespace], policies=policies, ttl=token_ttl,
        audience=audience, mount_point=mount)
    return reviewer
