"""SHA-256 without importing hashlib.

`import hashlib` loads OpenSSL (~3 ms, a tenth of the `%load_ext` budget), and the engine needs only
SHA-256 (fingerprints, compiled-cache keys). CPython's own SHA-256 module gives the same digests.
"""
from __future__ import annotations

try:
    from _sha256 import sha256  # CPython <= 3.11
except ImportError:  # pragma: no cover - depends on the interpreter
    try:
        from _sha2 import sha256  # CPython >= 3.12
    except ImportError:
        from hashlib import sha256

__all__ = ["sha256"]
