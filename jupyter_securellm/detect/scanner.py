"""The Scanner: prefilter (Hyperscan or pure Python) -> exact regex in small windows -> false-positive filters."""
from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass, field
from typing import Iterable

from . import filters
from . import known as known_mod
from .backends import merge_windows, project
from .digest import sha256
from .knownset import KnownSecrets
from .lazy_regex import LazyRegex
from .rules import LOOKAROUND_MARGIN, Rule
from .ruleset import RuleSet, as_ruleset

_FP_SALT = b"jupyter-securellm/fingerprint/v1\0"


def fingerprint(secret: str) -> str:
    """Stable, salted digest of a secret: same value, same fingerprint (baselines store these, never values)."""
    return sha256(_FP_SALT + secret.encode("utf-8", "surrogatepass")).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected secret. Offsets index the scanned string; the value itself is never kept."""

    start: int
    end: int
    rule_id: str
    fingerprint: str
    #: where the whole match begins (before `start` when a rule matches context such as `API_KEY = `)
    match_start: int = field(default=-1, compare=False)

    def __repr__(self) -> str:
        return f"Finding({self.start}:{self.end} {self.rule_id} fp={self.fingerprint})"


def as_text(data: str | bytes) -> str:
    """Bytes are decoded as UTF-8 with surrogateescape, so any byte string round-trips."""
    if isinstance(data, str):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data).decode("utf-8", "surrogateescape")
    raise TypeError(f"expected str or bytes, got {type(data).__name__}")


def hyperscan_available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except Exception:  # noqa: BLE001 - missing wheel or unsupported CPU
        return False
    return True


_B64_RUN = LazyRegex(r"[A-Za-z0-9+/]{24,}={0,2}|[A-Za-z0-9_-]{24,}={0,2}")
_MAX_DECODE_RUN = 1 << 20
_MIN_RUN = 24
#: Maps every base64/base64url alphabet byte to b"a" and everything else to b" ", so runs are found with
#: bytes.find at C speed instead of a regex over the whole text.
_RUN_TABLE = bytes(
    ord("a") if chr(b) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-" else ord(" ")
    for b in range(256)
)
_NON_PRINTABLE = LazyRegex(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


def base64_runs(text: str):
    """(start, end) of runs that may be base64 or base64url (24+ alphabet characters, then `=` padding)."""
    mask = project(text).translate(_RUN_TABLE)
    seed = b"a" * _MIN_RUN
    n = len(mask)
    pos = mask.find(seed)
    while pos != -1:
        end = mask.find(b" ", pos)
        end = n if end == -1 else end
        run = text[pos:end]
        if ("+" in run or "/" in run) and ("_" in run or "-" in run):
            # both alphabets mixed: split exactly as the two-alphabet regex does
            for m in _B64_RUN.finditer(text, pos, min(n, end + 2)):
                yield m.start(), m.end()
        else:
            while end < n and end - pos < len(run) + 2 and text[end] == "=":
                end += 1
            yield pos, end
        pos = mask.find(seed, end)


class Scanner:
    """Finds credentials by rule and registered known secrets in text.

    `rules` is a `RuleSet` or an iterable of `Rule` (default: the built-in rules, compiled once per process).
    `backend` is "auto" (Hyperscan when importable), "hyperscan" or "python"; both give identical findings.
    """

    def __init__(
        self, rules: Iterable[Rule] | RuleSet | None = None, *, backend: str = "auto", known_secrets=()
    ):
        self.ruleset: RuleSet = as_ruleset(rules)
        self.rules: tuple[Rule, ...] = self.ruleset.rules
        if backend == "auto":
            backend = "hyperscan" if hyperscan_available() else "python"
        if backend not in ("hyperscan", "python"):
            raise ValueError(f"backend must be 'auto', 'hyperscan' or 'python', not {backend!r}")
        self.backend_name = backend
        # Same span found twice: a provider-specific rule names it best, then a known secret, then generic rules.
        self._priority = {r.id: (2 if r.generic else 0) for r in self.rules}
        self._priority[known_mod.RULE_ID] = 1
        self._rule_backend = None  # built lazily: constructing a Scanner must stay cheap
        self._known = KnownSecrets(hyperscan=backend == "hyperscan")
        self._partial = None  # the rules' stream detectors (see `partial_detectors`)
        self._lock = threading.RLock()
        for s in known_secrets:
            self.add_secret(s)

    # -- known secrets -------------------------------------------------------------------------------
    def add_secret(self, value: str) -> None:
        """Register a value to be found raw and in every encoding people print (see `known`)."""
        if not isinstance(value, str):
            raise TypeError("add_secret() takes the secret as str")
        if len(value) < known_mod.MIN_SECRET_LENGTH:
            raise ValueError(
                f"a known secret must be at least {known_mod.MIN_SECRET_LENGTH} characters; shorter values "
                "would redact ordinary text"
            )
        with self._lock:
            self._known.add(value, fingerprint(value))
        # Adding indexes the value's forms (O(its forms)): nothing is rebuilt, whatever the set's size.

    @property
    def known_secret_count(self) -> int:
        return len(self._known)

    @property
    def known_version(self) -> int:
        """Changes whenever a secret is added (lets dependants rebuild caches)."""
        return self._known.version

    def known_secrets(self) -> tuple[str, ...]:
        return tuple(self._known.secrets)

    def known_hold_start(self, buf: str, start: int) -> int:
        """Where a known secret's form could still be in progress at the end of `buf` (see `KnownSecrets`)."""
        return self._known.hold_start(buf, start)

    def partial_detectors(self):
        """The rules' stream partial-match detectors (see `partial`), owned by the RuleSet."""
        return self.ruleset.partial_detector_set()

    def _rule_prefilter(self):
        if self._rule_backend is None:
            self._rule_backend = self.ruleset.backend(self.backend_name)
        return self._rule_backend

    # -- scanning ------------------------------------------------------------------------------------
    def scan(self, text: str | bytes, *, decode_depth: int = 0, start: int = 0) -> list[Finding]:
        """All findings in `text`, sorted by position, overlaps resolved (see `resolve_overlaps`).

        With `start`, only matches beginning at or after it are reported, while lookbehinds still see
        the text before it (the stream redactor passes already-emitted context this way).
        """
        return self.scan_projected(text, decode_depth=decode_depth, start=start)[0]

    def scan_projected(self, text: str | bytes, *, decode_depth: int = 0, start: int = 0) -> tuple[list[Finding], bytes]:
        """`scan`, and the one-byte-per-character projection of `text` it made (see `backends.project`),
        for callers that search the same text again (`remembered`)."""
        text = as_text(text)
        if not text:
            return [], b""
        data = project(text)
        hits, gate = self._rule_prefilter().prefilter(text, data)
        found = self._rule_findings(text, hits, start)
        if len(self._known):
            fps = self._known.fingerprints
            found.extend(
                Finding(s, e, known_mod.RULE_ID, fps[idx], s)
                for s, e, idx in self._known.matches(text, data, gate)
                if s >= start
            )
        if decode_depth > 0:
            found.extend(self._decoded_findings(text, decode_depth))
        return resolve_overlaps(found, self._priority), data

    def merge(self, found: list[Finding]) -> list[Finding]:
        """Sorted, overlaps resolved with this scanner's priorities (see `resolve_overlaps`)."""
        return resolve_overlaps(found, self._priority)

    def _rule_findings(self, text: str, rule_hits: dict, start: int = 0) -> list[Finding]:
        n = len(text)
        out: list[Finding] = []
        rules = self.rules
        for i, hits in rule_hits.items():
            rule = rules[i]
            rx = rule.regex
            for ws, we in merge_windows(hits.ends, rule.max_width + LOOKAROUND_MARGIN, hits.after, n):
                # A match ending in the last LOOKAROUND_MARGIN chars of a window may only exist because
                # the window cut off its lookahead; a true match always ends before that.
                limit = n if we == n else we - LOOKAROUND_MARGIN
                pos = max(ws, start)
                while pos <= we:
                    m = rx.search(text, pos, we)
                    if m is None:
                        break
                    if m.end() > limit:
                        pos = m.start() + 1
                        continue
                    s, e = rule.secret_span(m)
                    if self._keep(rule, text, m, s, e):
                        out.append(Finding(s, e, rule.id, fingerprint(text[s:e]), m.start()))
                        pos = m.end() if m.end() > m.start() else m.start() + 1
                    else:
                        # a rejected match consumes nothing: a real one may start inside it
                        # (`KEY=KEY= <value>`: the first name's rejected value is the second name)
                        pos = m.start() + 1
        return out

    @staticmethod
    def _keep(rule: Rule, text: str, m: re.Match, s: int, e: int) -> bool:
        secret = text[s:e]
        # ids are numbers, not randomness: entropy and the mask check look at the rest (`Rule.numeric_ids`)
        masked = filters.without_id_groups(secret) if rule.numeric_ids else secret
        if filters.shannon_entropy(masked) < filters.entropy_threshold(rule.entropy, masked):
            return False
        if rule.min_classes and filters.char_classes(secret) < rule.min_classes:
            return False
        if any(a.search(secret) for a in rule.allow_regexes):
            return False
        if filters.is_placeholder(masked, loose_shape=rule.loose_shape):
            return False
        if rule.numeric_ids and filters.typed_ids(secret):
            return False
        if filters.inside_base64_payload(text, m.start()) or filters.followed_by_mask(text, e):
            return False
        if rule.generic:
            if filters.looks_like_identifier(secret) or filters.is_uuid(secret) or filters.looks_like_path(secret):
                return False
            if filters.looks_like_hash(secret, text[m.start() : s]) or filters.is_integrity_string(text, s):
                return False
            if filters.typed_sequence(secret) or filters.typed_ids(secret, min_digits=2):
                return False
        if rule.reject_code and filters.looks_like_code(secret):
            return False
        if rule.generic or rule.loose_shape:
            # the shape proves little: what real code and docs put in such places (see docs/detection.md)
            if filters.looks_like_code(secret) or filters.is_timestamp(secret) or filters.is_versioned_name(secret):
                return False
            if filters.is_pagination_key(text[m.start() : s]) or filters.inside_arn(text, s):
                return False
            if rule.generic and filters.is_non_secret_key(text[m.start() : s]):
                return False
            if filters.in_documentation_example(text, m.start()):
                return False
            if rule.id == "url-password":
                user = text[m.start() : s - 1].rsplit("//", 1)[-1]
                if filters.is_documentation_password(secret, user):
                    return False
        return True

    def _decoded_findings(self, text: str, depth: int) -> list[Finding]:
        """Secrets hidden in base64 runs (e.g. a key encoded in a log line): reported over the whole run."""
        out = []
        for start, end in base64_runs(text):
            if end - start > _MAX_DECODE_RUN or text.endswith(";base64,", 0, start):
                continue
            run = text[start:end]
            decoded = _b64_text(run)
            if not decoded:
                continue
            for f in self.scan(decoded, decode_depth=depth - 1):
                out.append(Finding(start, end, f.rule_id, f.fingerprint, start))
        return out


def _b64_text(run: str) -> str | None:
    """Decode a base64/base64url run to text, or None when it is not (mostly printable) UTF-8."""
    body = run.rstrip("=")
    body += "=" * (-len(body) % 4)
    try:
        raw = base64.b64decode(body, altchars=b"-_" if ("-" in run or "_" in run) else None, validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return decoded if decoded and len(_NON_PRINTABLE.findall(decoded)) <= 0.05 * len(decoded) else None


def resolve_overlaps(found: list[Finding], priority: dict[str, int] | None = None) -> list[Finding]:
    """Sort findings; drop exact duplicates and findings contained in another.

    Where several detectors find the same span, the lowest `priority` (then rule id) wins.
    Partial overlaps are kept: the Redactor merges them so no fragment survives.
    """
    prio = priority or {}
    found.sort(key=lambda f: (f.start, -f.end, prio.get(f.rule_id, 0), f.rule_id))
    out: list[Finding] = []
    max_end = -1
    for f in found:
        if f.end <= max_end:
            continue  # contained in (or equal to) an earlier finding
        out.append(f)
        max_end = f.end
    return out
