"""Prefilter backends: find where a rule *might* match, so the exact Python regex runs only there.

Two interchangeable backends give the same findings:
- `HyperscanBackend` compiles every rule's own pattern in Hyperscan prefilter mode (a superset of the exact
  pattern) and reports match end offsets; known secrets compile to exact literals.
- `PythonBackend` finds the rules' keywords with one `re` alternation and known secrets with `str.find`.
Both scan text projected to one byte per character (non-ASCII -> 0x80 for Hyperscan), so offsets need no
mapping, and rule patterns are compiled with re.ASCII so that projection is exact.
"""
from __future__ import annotations

import codecs
import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from . import known as known_mod
from .rules import LOOKAROUND_MARGIN, Rule

log = logging.getLogger(__name__)

#: Wider rules compile slowly in Hyperscan (a 20k-char PEM pattern takes seconds): prefilter them by keyword.
HS_MAX_PATTERN_WIDTH = 4096


def _x80_handler(err: UnicodeEncodeError):
    return (b"\x80" * (err.end - err.start), err.end)


codecs.register_error("securellm-x80", _x80_handler)


class HsDatabase:
    """A Hyperscan database with one scratch space per thread (one scratch cannot serve two scans at once)."""

    __slots__ = ("db", "_local")

    def __init__(self, db):
        self.db = db
        self._local = threading.local()

    def scan(self, data: bytes, handler) -> None:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            import hyperscan

            scratch = self._local.scratch = hyperscan.Scratch(self.db)
        self.db.scan(data, match_event_handler=handler, scratch=scratch)


def project(text: str) -> bytes:
    """One byte per character: ASCII stays, everything else becomes 0x80."""
    return text.encode("ascii", "securellm-x80")


@dataclass
class RuleHits:
    """End offsets where a rule may have matched, and how far after a hit a match may still extend."""

    ends: list[int]
    after: int


class PythonBackend:
    """Keyword prefilter without Hyperscan: `bytes.find` per keyword over the lower-cased projection.

    Lower-casing the one-byte-per-character projection touches only ASCII letters, so offsets stay exact
    and the match is ASCII case-insensitive, like Hyperscan's caseless literals.
    """

    name = "python"

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = rules
        owners: dict[str, list[int]] = {}
        for i, r in enumerate(rules):
            for kw in r.keywords:
                owners.setdefault(kw, []).append(i)
        self._keywords = [(kw.encode("ascii"), idx) for kw, idx in owners.items()]

    def rule_hits(self, text: str) -> dict[int, RuleHits]:
        data = project(text).lower()
        hits: dict[int, list[int]] = {}
        for kw, owner_ids in self._keywords:
            find = data.find
            p = find(kw)
            if p == -1:
                continue
            ends = []
            while p != -1:
                ends.append(p + len(kw))
                p = find(kw, p + 1)
            for i in owner_ids:
                hits.setdefault(i, []).extend(ends)
        return {
            i: RuleHits(sorted(ends), self.rules[i].max_width + LOOKAROUND_MARGIN) for i, ends in hits.items()
        }

class PythonKnownMatcher:
    """Known secrets without Hyperscan: `str.find` per literal form, `re` for separated forms."""

    def __init__(self, literals: list[tuple[str, int]], separated: list[tuple[str, int]]):
        self._known = literals
        self._separated = _separated_regexes(separated)

    def matches(self, text: str) -> list[tuple[int, int, int]]:
        """(start, end, secret index) of every occurrence, overlapping ones included."""
        out = []
        for variant, idx in self._known:
            find = text.find
            p = find(variant)
            while p != -1:
                out.append((p, p + len(variant), idx))
                p = find(variant, p + 1)
        for sep, idx in self._separated:
            if sep.secret[0] in text:
                out.extend((m.start(), m.end(), idx) for m in sep.rx.finditer(text))
        return out


class HyperscanBackend:
    name = "hyperscan"

    def __init__(self, rules: tuple[Rule, ...]):
        import hyperscan

        self.rules = rules
        self._rule_db = HsDatabase(_compile_rule_db(hyperscan, rules))

    def rule_hits(self, text: str) -> dict[int, RuleHits]:
        data = project(text)
        hits: dict[int, list[int]] = {}

        def on_match(pid, _from, to, _flags, _ctx):
            lst = hits.get(pid)
            if lst is None:
                hits[pid] = [to]
            elif lst[-1] != to:
                lst.append(to)

        self._rule_db.scan(data, on_match)
        # each rule is compiled either as its pattern (id i, ends reported in order) or as its keywords
        # (id i + n, several keywords interleaved, and the match may extend a whole rule width after one)
        n = len(self.rules)
        out: dict[int, RuleHits] = {}
        for pid, ends in hits.items():
            if pid < n:
                out[pid] = RuleHits(ends, LOOKAROUND_MARGIN)
            else:
                out[pid - n] = RuleHits(sorted(ends), self.rules[pid - n].max_width + LOOKAROUND_MARGIN)
        return out



class HyperscanKnownMatcher:
    """Known secrets with Hyperscan: literal forms matched exactly, separated forms prefiltered then verified."""

    def __init__(self, literals: list[tuple[str, int]], separated: list[tuple[str, int]]):
        import hyperscan as hs

        self._known = literals
        self._separated = _separated_regexes(separated)
        exprs = [known_mod.hs_literal(v) for v, _ in literals]
        flags = [0] * len(exprs)
        for secret, _idx in separated:
            exprs.append(known_mod.hs_separated(secret))
            flags.append(0)
        self._db = None
        if exprs:
            db = hs.Database(mode=hs.HS_MODE_BLOCK)
            db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags)
            self._db = HsDatabase(db)

    def matches(self, text: str) -> list[tuple[int, int, int]]:
        if self._db is None:
            return []
        literal_hits: list[tuple[int, int]] = []
        sep_hits: dict[int, list[int]] = {}
        nlit = len(self._known)

        def on_match(pid, _from, to, _flags, _ctx):
            if pid < nlit:
                literal_hits.append((pid, to))
            else:
                sep_hits.setdefault(pid - nlit, []).append(to)

        self._db.scan(project(text), on_match)
        out = []
        for pid, to in literal_hits:
            variant, idx = self._known[pid]
            start = to - len(variant)
            if text.startswith(variant, start):
                out.append((start, to, idx))
        n = len(text)
        prefix_width = known_mod.separated_max_width("x" * known_mod.HS_SEPARATED_PREFIX)
        for k, ends in sep_hits.items():
            sep, idx = self._separated[k]
            for ws, we in merge_windows(ends, prefix_width, sep.width, n):
                out.extend((m.start(), m.end(), idx) for m in sep.rx.finditer(text, ws, we))
        return out


class _LazySeparated:
    """The exact separated-form regex of one secret, compiled on first use (compiling costs milliseconds,
    and most texts never contain a candidate)."""

    __slots__ = ("secret", "width", "_rx")

    def __init__(self, secret: str):
        self.secret = secret
        self.width = known_mod.separated_max_width(secret)
        self._rx = None

    @property
    def rx(self) -> re.Pattern:
        if self._rx is None:
            self._rx = re.compile(known_mod.separated_pattern(self.secret))
        return self._rx


def _separated_regexes(separated: list[tuple[str, int]]) -> list[tuple[_LazySeparated, int]]:
    return [(_LazySeparated(secret), idx) for secret, idx in separated]


def merge_windows(ends: list[int], before: int, after: int, n: int) -> list[tuple[int, int]]:
    """Windows [end - before, end + after] around sorted hit ends, clipped to [0, n] and merged."""
    out: list[tuple[int, int]] = []
    for e in ends:
        s, t = max(0, e - before), min(n, e + after)
        if out and s <= out[-1][1]:
            if t > out[-1][1]:
                out[-1] = (out[-1][0], t)
        else:
            out.append((s, t))
    return out


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "jupyter_securellm"


def _compile_rule_db(hs, rules: tuple[Rule, ...]):
    """Compile (or load from cache) the rule database.

    A rule is compiled as its own pattern in prefilter mode when Hyperscan accepts it and its width is
    modest; very wide rules (PEM blocks, JWTs) compile slowly, so they, and any rule Hyperscan rejects, are
    found by their keywords instead. Pattern ids are the rule index; keyword ids are rule index +
    len(rules), which tells `rule_hits` that a match may extend a whole rule width after the hit.
    """

    def pattern_ok(rule: Rule, i: int) -> bool:
        if rule.max_width > HS_MAX_PATTERN_WIDTH:
            return False
        try:
            hs.Database(mode=hs.HS_MODE_BLOCK).compile(
                expressions=[rule.pattern.encode("ascii")], ids=[i], elements=1, flags=[hs.HS_FLAG_PREFILTER]
            )
        except Exception as exc:  # noqa: BLE001 - any compile error means: use keywords for this rule
            log.debug("rule %s: no hyperscan prefilter (%s); using its keywords", rule.id, exc)
            return False
        return True

    exprs, ids, flags = [], [], []
    fallback = []
    for i, r in enumerate(rules):
        as_pattern = r.max_width <= HS_MAX_PATTERN_WIDTH and r.pattern.isascii()
        if as_pattern:
            exprs.append(r.pattern.encode("ascii"))
            ids.append(i)
            flags.append(hs.HS_FLAG_PREFILTER)
        else:
            fallback.append(i)
            for kw in r.keywords:
                exprs.append(known_mod.hs_literal(kw))
                ids.append(i + len(rules))
                flags.append(hs.HS_FLAG_CASELESS)
    key = hashlib.sha256(
        repr((hs.__version__ if hasattr(hs, "__version__") else "", exprs, ids, flags)).encode()
    ).hexdigest()[:24]
    cache = _cache_dir() / f"rules-{key}.hsdb"
    try:
        return hs.loadb(cache.read_bytes(), hs.HS_MODE_BLOCK)
    except Exception:  # noqa: BLE001 - missing or stale cache: compile
        pass
    db = hs.Database(mode=hs.HS_MODE_BLOCK)
    try:
        db.compile(expressions=exprs, ids=ids, elements=len(exprs), flags=flags)
    except Exception:  # noqa: BLE001 - a user-supplied rule Hyperscan cannot take: find it, use its keywords
        bad = [i for i, r in enumerate(rules) if i not in fallback and not pattern_ok(r, i)]
        keep = [(e, i, f) for e, i, f in zip(exprs, ids, flags) if i not in bad]
        for i in bad:
            fallback.append(i)
            keep += [(known_mod.hs_literal(kw), i + len(rules), hs.HS_FLAG_CASELESS) for kw in rules[i].keywords]
        exprs, ids, flags = (list(t) for t in zip(*keep))
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(expressions=exprs, ids=ids, elements=len(exprs), flags=flags)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(hs.dumpb(db))
        os.replace(tmp, cache)
    except OSError:
        pass
    return db
