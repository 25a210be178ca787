"""`secrets.get(path, key)`: non-LLM secrets for user code, fetched through the broker.

The broker checks policy (`c.SecureLLM.user_secret_paths`) and audits the read. The value comes
back as a `Secret`: a str subclass, so it works wherever a string is needed (drivers, headers,
concatenation, f-strings), but `repr()`/`str()`/`print()` show a placeholder. Its raw value and
encodings are registered with the kernel redactor, so printing it in any other form is caught too.
"""
from __future__ import annotations

__all__ = ["Secret", "get"]

PLACEHOLDER = "[REDACTED:known-secret]"


class Secret(str):
    """A string whose repr/str are redacted. Use `.reveal()` for an API that calls str() on it."""

    __slots__ = ()

    def __repr__(self):
        return f"Secret({PLACEHOLDER!r})"

    def __str__(self):
        return PLACEHOLDER

    def __format__(self, spec):
        # f"postgresql://u:{pw}@db" must build the real URL; output redaction still catches it.
        return format(str.__str__(self), spec)

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))

    def reveal(self) -> str:
        """The raw value as a plain str (still registered with the redactor)."""
        return str.__str__(self)

    def __reduce__(self):
        raise TypeError("A Secret cannot be pickled (it would land on disk); pickle secret.reveal() "
                        "only if you really mean to.")

    __reduce_ex__ = lambda self, protocol: self.__reduce__()  # noqa: E731


def _backend():
    from .backend import current_backend

    return current_backend()


def get(path: str, key: str) -> Secret:
    """Fetch field `key` of the Vault secret at `path` (policy-checked by the broker)."""
    from .redaction import add_secret

    if not isinstance(path, str) or not isinstance(key, str) or not path or not key:
        raise ValueError("secrets.get(path, key) needs two non-empty strings, e.g. secrets.get('db/warehouse', 'password').")
    value = _backend().secret(path, key)
    if not isinstance(value, str):
        value = str(value)
    add_secret(value)
    return Secret(value)
