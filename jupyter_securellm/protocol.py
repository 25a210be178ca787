"""The contract between the kernel side and the server side (stdlib only, imported by both).

One definition of everything both sides of the kernel/server line must agree on: the REST prefix,
the environment variables and header that carry a kernel's broker address and capability token,
the error types with their HTTP status, and the ONE list of environment-variable name globs that
count as credentials. The server's kernel-launch sanitizer and the kernel's env guard both use
`ENV_DENY_PATTERNS` (a test asserts it), so the two sides of a security boundary cannot disagree.
See docs/architecture.md.
"""
from __future__ import annotations

#: REST prefix under the Jupyter server's base URL.
PREFIX = "jupyter-securellm/v1"

#: Environment variables the server sets in every kernel it launches.
URL_ENV = "JUPYTER_SECURELLM_URL"
TOKEN_ENV = "JUPYTER_SECURELLM_KERNEL_TOKEN"
#: Header a kernel sends its capability token in.
TOKEN_HEADER = "X-SecureLLM-Token"

#: Error types of `{"error": {"type", "message"}}` and their HTTP status.
ERROR_STATUS: dict[str, int] = {
    "invalid_request": 400,
    "unauthorized": 401,
    "policy_denied": 403,
    "egress_denied": 403,
    "not_found": 404,
    "dlp_blocked": 422,
    "budget_exhausted": 429,
    "rate_limited": 429,
    "provider_error": 502,
    "provider_auth": 502,
    "vault_unavailable": 503,
    "audit_unavailable": 503,
    "broker_unavailable": 503,  # hub-service mode: the JupyterHub broker service is down or unreachable
    "timeout": 504,
}

#: The error type assumed for a bare HTTP status (an answer without our error body); else provider_error.
STATUS_TYPE: dict[int, str] = {
    400: "invalid_request", 401: "unauthorized", 403: "policy_denied", 404: "not_found", 422: "dlp_blocked",
    429: "rate_limited", 502: "provider_error", 503: "vault_unavailable", 504: "timeout",
}

#: Case-insensitive globs of environment variable NAMES that hold credentials. The union of what
#: the kernel env guard and the server's launch sanitizer used to list separately.
ENV_DENY_PATTERNS: tuple[str, ...] = (
    # credential words anywhere in the name (VAULT_TOKEN, HF_TOKEN, GOOGLE_APPLICATION_CREDENTIALS...)
    "*API_KEY*", "*APIKEY*", "*SECRET*", "*TOKEN*", "*PASSWORD*", "*PASSWD*", "*CREDENTIAL*",
    "*PRIVATE_KEY*", "*ACCESS_KEY*", "*AUTH_KEY*", "*CONNECTION_STRING*", "*_PAT",
    # whole families whose other members configure a credential's use
    "AWS_*", "AZURE_OPENAI_*", "LITELLM_*",
)

#: Names the kernel env guard never treats as credentials by name alone (paths, URLs, flags): it
#: still checks their values. The server's launch sanitizer does not use this list: it is stricter.
ENV_ALLOW_PATTERNS: tuple[str, ...] = (
    "*_PATH", "*_FILE", "*_DIR", "*_URL", "*_ADDR", "*_HOST", "*_PORT", "*_TTL", "*_MODE",
    "TOKENIZERS_PARALLELISM", "*_TIMEOUT", "*_ENABLED", "*_DISABLED",
    # settings that sit beside credentials in the AWS_*/AZURE_OPENAI_*/LITELLM_* families
    "*_BUNDLE", "*_REGION", "*_PROFILE", "*_ENDPOINT", "*_VERSION",
)


class ProtocolError(Exception):
    """An error of the REST contract: `type` is a key of ERROR_STATUS, `message` one sentence."""

    def __init__(self, type_: str, message: str, **extra):
        if type_ not in ERROR_STATUS:
            raise ValueError(f"unknown error type {type_!r}")
        super().__init__(message)
        self.type = type_
        self.message = message
        self.extra = extra

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.type]

    def to_json(self) -> dict:
        body = {"type": self.type, "message": self.message}
        body.update(self.extra)
        return {"error": body}
