"""HTTP client from the kernel to the broker (stdlib only: no litellm, no hvac, no requests).

The kernel holds only a per-kernel capability token, never a provider key. The token is taken
out of os.environ at `%load_ext` (children must not inherit it) and kept here, in memory.
Nothing here touches the network until a magic actually calls the broker.
"""
from __future__ import annotations

import json
import os

from ..protocol import PREFIX, STATUS_TYPE, TOKEN_ENV, TOKEN_HEADER, URL_ENV  # noqa: F401 - re-exported

_KERNEL_TOKEN: str | None = None  # survives %reload_ext: the env var is gone after the first load

# What to do, per broker error type, when the broker sent no message of its own.
ERROR_HINTS = {
    "invalid_request": "The request was not valid; check the model name and options (%llm help).",
    "unauthorized": "This kernel's broker token was refused; restart the kernel from JupyterLab to get a fresh one.",
    "policy_denied": "Your organisation's policy does not allow this call; see %llm models for what you may use.",
    "egress_denied": "The model's provider host is not on the allowed list; ask your admin to allow it.",
    "dlp_blocked": "The prompt looks like it contains a secret or sensitive data, so it was not sent; remove it and retry.",
    "budget_exhausted": "Your LLM budget is used up; see %llm status, or ask your admin for more.",
    "rate_limited": "The provider is rate limiting; wait a moment and retry.",
    "vault_unavailable": "Vault is unreachable or sealed, so no key could be read; retry later or tell your admin.",
    "broker_unavailable": "The JupyterHub broker service is down or unreachable; retry later or tell your admin.",
    "provider_error": "The LLM provider returned an error; retry, or try another model (%llm models).",
    "provider_auth": "The provider refused the key stored in Vault; ask your admin to rotate it.",
    "timeout": "The LLM call timed out; retry, or ask for a shorter answer (--max-tokens).",
    "not_found": "Not found; check the model alias (%llm models) or the secret path.",
    "connection": "Cannot reach the SecureLLM broker; is the Jupyter server running with jupyter_securellm enabled?",
    "no_broker": ("This kernel was not started by a Jupyter server with jupyter_securellm (no broker address): "
                  "open the notebook from JupyterLab, or configure direct mode (see docs/kernel.md)."),
    "protocol": "The broker sent a response this client does not understand; check that the versions match.",
}


class SecureLLMError(Exception):
    """An error shown to the notebook user as one sentence, never a traceback with internals."""

    def __init__(self, type: str, message: str | None = None, status: int | None = None):  # noqa: A002
        self.type = type
        self.message = message or ERROR_HINTS.get(type, "The LLM call failed.")
        self.status = status
        super().__init__(self.message)

    def __str__(self):
        return self.message

    def _render_traceback_(self):  # IPython shows this instead of a traceback
        from .redaction import redact

        return [f"SecureLLM ({self.type}): {redact(self.message)}"]


def take_token_from_env() -> str | None:
    """Move the kernel token from os.environ into memory (idempotent)."""
    global _KERNEL_TOKEN
    value = os.environ.pop(TOKEN_ENV, None)
    if value:
        _KERNEL_TOKEN = value
    return _KERNEL_TOKEN


def kernel_token() -> str | None:
    return _KERNEL_TOKEN or os.environ.get(TOKEN_ENV)


def error_from_body(status: int, raw: bytes | str) -> SecureLLMError:
    try:
        err = json.loads(raw).get("error") or {}
        etype = err.get("type") or _type_for_status(status)
        return SecureLLMError(etype, err.get("message") or None, status)
    except (ValueError, AttributeError):
        return SecureLLMError(_type_for_status(status), None, status)


def _type_for_status(status: int) -> str:
    return STATUS_TYPE.get(status, "provider_error")


def iter_sse(lines):
    """Yield the `data:` payload of each server-sent event from an iterable of byte lines."""
    data = []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
    if data:
        yield "\n".join(data)


def iter_chunks(lines):
    """OpenAI chat.completion.chunk dicts from an SSE body; raises SecureLLMError on an error event."""
    for payload in iter_sse(lines):
        if payload.strip() == "[DONE]":
            return
        try:
            obj = json.loads(payload)
        except ValueError:
            raise SecureLLMError("protocol") from None
        if isinstance(obj, dict) and "error" in obj:
            err = obj["error"] or {}
            raise SecureLLMError(err.get("type") or "provider_error", err.get("message"))
        yield obj


def delta_text(chunk: dict) -> str:
    try:
        return chunk["choices"][0].get("delta", {}).get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def _shape(raw: bytes) -> str:
    """What an unexpected JSON body is, for a bug report: its top-level keys only, never a value."""
    try:
        obj = json.loads(raw)
    except ValueError:
        return ""
    if isinstance(obj, dict):
        return "; keys " + ", ".join(sorted(str(k)[:30] for k in obj)[:12])
    return f"; a JSON {type(obj).__name__}"


class BrokerClient:
    """Talks to `<server>/jupyter-securellm/v1/` with the kernel token."""

    mode = "broker"

    def __init__(self, url: str, token: str | None, timeout: float = 120.0):
        from urllib.parse import urlsplit

        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SecureLLMError("no_broker", f"The broker address {URL_ENV} is not an http(s) URL.")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_env(cls, timeout: float = 120.0) -> "BrokerClient":
        url = os.environ.get(URL_ENV)
        if not url:
            raise SecureLLMError("no_broker")
        return cls(url, kernel_token(), timeout)

    # -- transport
    def _connection(self):
        import http.client

        conn_cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return conn_cls(self._host, self._port, timeout=self.timeout)

    def _send(self, method: str, path: str, body: dict | None = None, accept="application/json"):
        conn = self._connection()
        headers = {"Accept": accept}
        if self.token:
            headers[TOKEN_HEADER] = self.token
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, f"{self._prefix}/{path}", body=payload, headers=headers)
            resp = conn.getresponse()
        except TimeoutError:
            conn.close()
            raise SecureLLMError("timeout") from None
        except OSError as exc:
            conn.close()
            raise SecureLLMError("connection", f"Cannot reach the SecureLLM broker at {self.url} "
                                 f"({exc.__class__.__name__}); is the Jupyter server running with "
                                 "jupyter_securellm enabled?") from None
        if resp.status >= 400:
            raw = resp.read()
            conn.close()
            raise error_from_body(resp.status, raw)
        return conn, resp

    def _json(self, method: str, path: str, body: dict | None = None) -> dict:
        conn, resp = self._send(method, path, body)
        try:
            raw = resp.read()
        except TimeoutError:
            raise SecureLLMError("timeout") from None
        finally:
            conn.close()
        try:
            return json.loads(raw)
        except ValueError:
            raise SecureLLMError("protocol") from None

    # -- API
    def models(self) -> list[str]:
        data = self._json("GET", "models")
        return [m["id"] for m in data.get("data", []) if isinstance(m, dict) and "id" in m]

    def status(self) -> dict:
        return self._json("GET", "status")

    def secret(self, path: str, key: str) -> str:
        return self._json("POST", "secrets/get", {"path": path, "key": key})["value"]

    def complete(self, body: dict) -> dict:
        return self._json("POST", "chat/completions", dict(body, stream=False))

    def stream(self, body: dict):
        """Yield chunk dicts. Closing the generator (e.g. after Ctrl-C) closes the connection,
        which the broker sees as a client disconnect and stops the provider call."""
        conn, resp = self._send("POST", "chat/completions", dict(body, stream=True), accept="text/event-stream")
        try:
            ctype = resp.getheader("Content-Type", "")
            if "text/event-stream" not in ctype:
                # A broker may answer a stream request with one JSON completion.
                raw = resp.read()
                try:
                    obj = json.loads(raw)
                    text = obj["choices"][0]["message"].get("content") or ""
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    shape = _shape(raw)
                    raise SecureLLMError("protocol", f"The broker answered a streaming call with HTTP {resp.status} "
                                         f"and {ctype or 'no content type'} ({len(raw)} bytes{shape}), neither an "
                                         "event stream nor a completion; run it again, and report it if it repeats.",
                                         resp.status) from None
                yield {"choices": [{"delta": {"content": text}}], "usage": obj.get("usage")}
                return
            try:
                yield from iter_chunks(iter(resp.readline, b""))
            except TimeoutError:
                raise SecureLLMError("timeout") from None
        finally:
            conn.close()
