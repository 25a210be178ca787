"""STAND-IN LLM providers that speak real wire formats (tests only): Anthropic Messages, Azure OpenAI,
Google Gemini (AI Studio) and OpenAI-compatible, each optionally behind HTTPS with a CA made at run time.

Real providers are out of reach from test machines, so each stand-in answers the way its provider
does and checks the credential exactly where that provider expects it:

=================  ==============================================  =============================
format             endpoint                                        credential
=================  ==============================================  =============================
``anthropic``      ``POST /v1/messages`` (SSE: ``message_start``,   ``x-api-key`` header (and an
                   ``content_block_delta``, ``message_stop``...)    ``anthropic-version`` header)
``azure``          ``POST /openai/deployments/{d}/chat/completions  ``api-key`` header
                   ?api-version=...``
``gemini``         ``POST /v1beta/models/{m}:generateContent`` or   ``x-goog-api-key`` header or
                   ``:streamGenerateContent?alt=sse``               the ``key`` query parameter
``openai``         ``POST /v1/chat/completions``                    ``Authorization: Bearer``
=================  ==============================================  =============================

A credential anywhere else (a Bearer header at Anthropic, a key in the body...) is refused with the
provider's own 401/400/403 error body, and recorded as such.

Every request is recorded in ``requests`` as a :class:`Call`: method, path with any ``key`` query value
replaced, header NAMES, parsed body, where a credential was found and its fingerprint (never a value).
``saw_only(key)`` says whether every credential this stand-in received was exactly ``key``.

Knobs (attributes): ``echo_key`` appends `` key=<the accepted key>`` to answers (redaction tests);
``chunk_chars`` streams N characters per chunk (a key split across chunks); ``redirect_to`` answers
every request with ``redirect_status`` (307) and ``Location`` on that base URL (another host's
stand-in, which must then receive nothing); ``break_after`` closes the connection after N streamed
text pieces. Answers are ``"echo: " + <last user text>``.

HTTPS: ``tls=TestCA(...)`` serves HTTPS with a certificate from that CA for ``cert_hosts`` (default: the
bound host and ``localhost``; another name makes a host-name mismatch on purpose).
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from .provider import JSONPlumbing

__all__ = ["AnthropicStandIn", "AzureStandIn", "Call", "GeminiStandIn", "OpenAIStandIn", "StandIn",
           "TestCA", "fingerprint", "make_standin"]


def fingerprint(value: str) -> str:
    """A short, stable, non-reversible tag of a credential (what recordings and messages may show)."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


# ------------------------------------------------------------------ a CA made at run time
class TestCA:
    """A certificate authority made with `cryptography` at run time, issuing server and client certs.

    ``issue(dir, name, hosts=[...])`` writes ``name.pem``/``name.key`` and returns their paths;
    ``expired=True`` makes a certificate whose validity ended yesterday; ``client=True`` one for
    client authentication (mutual TLS). ``ca_cert`` is the CA certificate's PEM path.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, directory: str | Path, name: str = "jupyter-securellm test CA"):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name + " " + uuid.uuid4().hex[:6])])
        now = datetime.datetime.now(datetime.timezone.utc)
        self._cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.ca_cert = str(self.dir / "ca.pem")
        Path(self.ca_cert).write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, hosts=("127.0.0.1", "localhost"), *, expired: bool = False,
              client: bool = False) -> tuple[str, str]:
        """Write ``name.pem`` and ``name.key`` (0600) signed by this CA; return (cert path, key path)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = ((now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)) if expired
                      else (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=7)))
        sans = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                                  else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        cert_path, key_path = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        return str(cert_path), str(key_path)


# ------------------------------------------------------------------ recordings
@dataclass
class Call:
    """One request a stand-in received. Never holds a credential: only where it was and its fingerprint."""

    method: str
    path: str                      # with any `key=` query value replaced by its fingerprint
    header_names: list[str]        # lower-cased names only
    body: object
    credentials: dict[str, str]    # where -> fingerprint, e.g. {"header:x-api-key": "sha256:..."}
    auth_ok: bool
    time: float = field(default_factory=time.time)


_CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization")


class _Handler(JSONPlumbing, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StandInProvider/1.0"
    timeout = 30

    def log_message(self, fmt, *args):  # quiet: a stand-in's access log would be one more place for a key
        pass

    @property
    def si(self) -> "StandIn":
        return self.server.standin  # type: ignore[attr-defined]

    # -- plumbing ------------------------------------------------------------------------------
    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, text: str):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def break_connection(self):
        """Close mid-stream without the terminating chunk: a provider that hung up."""
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(2)

    # -- routes --------------------------------------------------------------------------------
    def do_GET(self):
        self._handle(None)

    def do_POST(self):
        self._handle(self.read_body())

    def _handle(self, body):
        si = self.si
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        creds = {}
        for name in _CREDENTIAL_HEADERS:
            v = self.headers.get(name)
            if v is not None:
                creds["header:" + name] = v[7:] if name == "authorization" and v.startswith("Bearer ") else v
        for v in query.get("key", []):
            creds["query:key"] = v
        ok = si.credential_ok(creds)
        shown_query = {k: ([fingerprint(x) for x in v] if k == "key" else v) for k, v in query.items()}
        shown_path = parts.path + ("?" + urlencode(shown_query, doseq=True) if shown_query else "")
        si._record(Call(self.command, shown_path, sorted(h.lower() for h in self.headers.keys()), body,
                        {w: fingerprint(v) for w, v in creds.items()}, ok))
        if si.redirect_to:
            location = si.redirect_to.rstrip("/") + self.path
            self.send_response(si.redirect_status)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        si.serve(self, parts.path, query, body, ok)


class StandIn:
    """Base: a threaded HTTP(S) server on 127.0.0.1 that records calls; subclasses speak one format."""

    format = "base"

    def __init__(self, key: str | None = None, *, tls: "TestCA | None" = None, host: str = "127.0.0.1",
                 cert_hosts=None):
        self.key = key
        self.host = host
        self.port = 0
        self.tls_ca = tls
        self.cert_hosts = tuple(cert_hosts) if cert_hosts else (host, "localhost")  # names its certificate holds
        self.echo_key = False
        self.chunk_chars: int | None = None
        self.break_after: int | None = None
        self.redirect_to: str | None = None
        self.redirect_status = 307
        self.fail_status: int | None = None
        self.requests: list[Call] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://{self.host}:{self.port}"

    def start(self) -> "StandIn":
        self._server = ThreadingHTTPServer((self.host, 0), _Handler)
        self._server.daemon_threads = True
        self._server.standin = self  # type: ignore[attr-defined]
        if self.tls_ca is not None:
            cert, key = self.tls_ca.issue(f"{self.format}-{uuid.uuid4().hex[:6]}", hosts=self.cert_hosts)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                         name=f"stand-in-{self.format}").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- recordings ----------------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        with self._lock:
            self.requests.append(call)

    def saw_only(self, key: str) -> bool:
        """At least one call, and every credential of every call was exactly `key` (by fingerprint)."""
        fp = fingerprint(key)
        with self._lock:
            calls = list(self.requests)
        return bool(calls) and all(c.credentials and set(c.credentials.values()) == {fp} for c in calls)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
        self.echo_key, self.chunk_chars, self.break_after = False, None, None
        self.redirect_to, self.fail_status = None, None

    # -- behaviour -----------------------------------------------------------------------------
    def _match(self, got: str | None) -> bool:
        return bool(self.key) and got is not None and hmac.compare_digest(got.encode(), self.key.encode())

    def credential_ok(self, creds: dict) -> bool:  # pragma: no cover - each format overrides
        raise NotImplementedError

    def answer(self, user_text: str) -> str:
        text = "echo: " + (user_text.strip() or "(empty)")
        if self.echo_key:
            text += " key=" + (self.key or "")
        return text

    def pieces(self, answer: str) -> list[str]:
        if self.chunk_chars:
            n = self.chunk_chars
            return [answer[i:i + n] for i in range(0, len(answer), n)]
        words = answer.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def serve(self, h: _Handler, path: str, query: dict, body, ok: bool) -> None:  # pragma: no cover
        raise NotImplementedError


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


# ------------------------------------------------------------------ Anthropic Messages
class AnthropicStandIn(StandIn):
    """Anthropic's Messages API: ``x-api-key`` + ``anthropic-version``; SSE with named events."""

    format = "anthropic"

    def credential_ok(self, creds):
        return set(creds) == {"header:x-api-key"} and self._match(creds["header:x-api-key"])

    def _error(self, h, status, etype, message):
        h.send_json(status, {"type": "error", "error": {"type": etype, "message": message},
                             "request_id": "req_" + uuid.uuid4().hex[:24]})

    def serve(self, h, path, query, body, ok):
        if h.command != "POST" or path.rstrip("/") != "/v1/messages":
            return self._error(h, 404, "not_found_error", f"Not found: {path}")
        if not ok:
            return self._error(h, 401, "authentication_error", "invalid x-api-key")
        if not h.headers.get("anthropic-version"):
            return self._error(h, 400, "invalid_request_error", "anthropic-version: header is required")
        if self.fail_status:
            return self._error(h, self.fail_status, "api_error", "Internal server error (stand-in)")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("max_tokens"):
            return self._error(h, 400, "invalid_request_error", "messages and max_tokens are required")
        users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        answer = self.answer(_text_of(users[-1].get("content")) if users else "")
        model = body.get("model") or "claude-stand-in"
        mid = "msg_" + uuid.uuid4().hex[:24]
        n_in, n_out = sum(len(_text_of(m.get("content")).split()) for m in body["messages"]), len(answer.split())
        if not body.get("stream"):
            return h.send_json(200, {"id": mid, "type": "message", "role": "assistant", "model": model,
                                     "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
                                     "stop_sequence": None, "usage": {"input_tokens": n_in, "output_tokens": n_out}})
        h.start_sse()

        def event(name, data):
            h.send_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n")

        event("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": n_in, "output_tokens": 1}}})
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})
        event("ping", {"type": "ping"})
        for i, piece in enumerate(self.pieces(answer)):
            if self.break_after is not None and i >= self.break_after:
                return h.break_connection()
            event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": piece}})
        event("content_block_stop", {"type": "content_block_stop", "index": 0})
        event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                "usage": {"output_tokens": n_out}})
        event("message_stop", {"type": "message_stop"})
        h.end_chunks()


# ------------------------------------------------------------------ OpenAI chat completions (and Azure)
def _openai_serve(si: StandIn, h: _Handler, body, model: str, azure: bool) -> None:
    users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
    answer = si.answer(_text_of(users[-1].get("content")) if users else "")
    cid, created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())
    n_in, n_out = sum(len(_text_of(m.get("content")).split()) for m in body["messages"]), len(answer.split())
    usage = {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}
    filt = {"hate": {"filtered": False, "severity": "safe"}, "self_harm": {"filtered": False, "severity": "safe"},
            "sexual": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}
    if not body.get("stream"):
        out = {"id": cid, "object": "chat.completion", "created": created, "model": model,
               "system_fingerprint": "fp_standin",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": answer, "refusal": None},
                            "logprobs": None, "finish_reason": "stop"}], "usage": usage}
        if azure:
            out["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": filt}]
            out["choices"][0]["content_filter_results"] = filt
        return h.send_json(200, out)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    h.start_sse()

    def chunk(delta, finish=None, choices=True, use=None):
        obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
               "system_fingerprint": "fp_standin",
               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else []}
        if include_usage:
            obj["usage"] = use
        h.send_chunk("data: " + json.dumps(obj) + "\n\n")

    if azure:  # Azure's first event carries the prompt filter results and no choices
        h.send_chunk("data: " + json.dumps({"id": "", "object": "", "created": 0, "model": "", "choices": [],
                                            "prompt_filter_results": [{"prompt_index": 0,
                                                                       "content_filter_results": filt}]}) + "\n\n")
    chunk({"role": "assistant", "content": "", "refusal": None})
    for i, piece in enumerate(si.pieces(answer)):
        if si.break_after is not None and i >= si.break_after:
            return h.break_connection()
        chunk({"content": piece})
    chunk({}, finish="stop")
    if include_usage:
        chunk(None, choices=False, use=usage)
    h.send_chunk("data: [DONE]\n\n")
    h.end_chunks()


def _openai_error(h, status, message, code=None, etype="invalid_request_error"):
    h.send_json(status, {"error": {"message": message, "type": etype, "param": None, "code": code}})


class OpenAIStandIn(StandIn):
    """OpenAI's chat completions: ``Authorization: Bearer``. With ``tls=TestCA(...)`` it serves HTTPS."""

    format = "openai"

    def credential_ok(self, creds):
        return set(creds) == {"header:authorization"} and self._match(creds["header:authorization"])

    def serve(self, h, path, query, body, ok):
        if h.command != "POST" or path.rstrip("/") != "/v1/chat/completions":
            return _openai_error(h, 404, f"Unknown path {path} (stand-in provider)")
        if not ok:
            return _openai_error(h, 401, "Incorrect API key provided.", "invalid_api_key")
        if self.fail_status:
            return _openai_error(h, self.fail_status, "The server had an error (stand-in).", etype="server_error")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _openai_error(h, 400, "'messages' is required")
        _openai_serve(self, h, body, body.get("model") or "gpt-stand-in", azure=False)


class AzureStandIn(StandIn):
    """Azure OpenAI: ``api-key`` header, ``/openai/deployments/{deployment}/chat/completions?api-version=``."""

    format = "azure"

    def __init__(self, key=None, *, deployments=("gpt4o-prod",), **kw):
        super().__init__(key, **kw)
        self.deployments = list(deployments)

    def credential_ok(self, creds):
        return set(creds) == {"header:api-key"} and self._match(creds["header:api-key"])

    def serve(self, h, path, query, body, ok):
        parts = path.strip("/").split("/")
        if h.command != "POST" or len(parts) != 5 or parts[:2] != ["openai", "deployments"] \
                or parts[3:] != ["chat", "completions"]:
            return h.send_json(404, {"error": {"code": "404", "message": "Resource not found"}})
        if not ok:
            return h.send_json(401, {"error": {"code": "401", "message": "Access denied due to invalid "
                                               "subscription key or wrong API endpoint. Make sure to provide a "
                                               "valid key for an active subscription and use a correct regional "
                                               "API endpoint for your resource."}})
        if not query.get("api-version", [""])[0]:
            return h.send_json(404, {"error": {"code": "404", "message": "Resource not found"}})
        if parts[2] not in self.deployments:
            return h.send_json(404, {"error": {"code": "DeploymentNotFound", "message": "The API deployment for "
                                               "this resource does not exist."}})
        if self.fail_status:
            return _openai_error(h, self.fail_status, "The server had an error (stand-in).", etype="server_error")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _openai_error(h, 400, "'messages' is a required property")
        _openai_serve(self, h, body, "gpt-4o-2024-11-20", azure=True)


# ------------------------------------------------------------------ Google Gemini (AI Studio)
class GeminiStandIn(StandIn):
    """Gemini's generateContent: the key in ``x-goog-api-key`` or the ``key`` query parameter."""

    format = "gemini"

    def credential_ok(self, creds):
        where = set(creds)
        if not where or not where <= {"header:x-goog-api-key", "query:key"}:
            return False
        return all(self._match(v) for v in creds.values())

    def _error(self, h, status, state, message):
        h.send_json(status, {"error": {"code": status, "message": message, "status": state}})

    def serve(self, h, path, query, body, ok):
        prefix = "/v1beta/models/"
        if h.command != "POST" or not path.startswith(prefix) or ":" not in path:
            return self._error(h, 404, "NOT_FOUND", f"Requested entity was not found: {path}")
        model, _, method = path[len(prefix):].partition(":")
        if method not in ("generateContent", "streamGenerateContent"):
            return self._error(h, 404, "NOT_FOUND", f"Unknown method {method}")
        if not ok:
            return self._error(h, 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        if self.fail_status:
            return self._error(h, self.fail_status, "INTERNAL", "An internal error has occurred (stand-in).")
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list):
            return self._error(h, 400, "INVALID_ARGUMENT", "contents is required")
        users = [c for c in body["contents"] if isinstance(c, dict) and c.get("role", "user") == "user"]
        last = " ".join(p.get("text", "") for p in (users[-1].get("parts") or []) if isinstance(p, dict)) if users else ""
        answer = self.answer(last)
        n_in = sum(len(p.get("text", "").split()) for c in body["contents"] if isinstance(c, dict)
                   for p in (c.get("parts") or []) if isinstance(p, dict))

        def response(text, final):
            out = {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}],
                   "usageMetadata": {"promptTokenCount": n_in, "candidatesTokenCount": len(answer.split()),
                                     "totalTokenCount": n_in + len(answer.split())},
                   "modelVersion": model, "responseId": uuid.uuid4().hex[:20]}
            if final:
                out["candidates"][0]["finishReason"] = "STOP"
            return out

        if method == "generateContent":
            return h.send_json(200, response(answer, True))
        if query.get("alt", [""])[0] != "sse":  # without alt=sse Gemini streams one JSON array
            return h.send_json(200, [response(answer, True)])
        h.start_sse()
        pieces = self.pieces(answer)
        for i, piece in enumerate(pieces):
            if self.break_after is not None and i >= self.break_after:
                return h.break_connection()
            h.send_chunk("data: " + json.dumps(response(piece, i == len(pieces) - 1)) + "\r\n\r\n")
        h.end_chunks()


_FORMATS = {"anthropic": AnthropicStandIn, "azure": AzureStandIn, "gemini": GeminiStandIn, "openai": OpenAIStandIn}


def make_standin(fmt: str, key: str | None = None, **kw) -> StandIn:
    """A stand-in of format `fmt` (``anthropic``, ``azure``, ``gemini``, ``openai``), not yet started."""
    return _FORMATS[fmt](key, **kw)
