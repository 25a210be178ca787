"""Prefilter backends: find where a rule *might* match, so the exact Python regex runs only there.

Two interchangeable backends give the same findings:
- `HyperscanBackend` compiles every rule's own pattern in Hyperscan prefilter mode (a superset of the exact
  pattern) and reports match end offsets.
- `PythonBackend` finds the rules' keywords with `bytes.find` over the lower-cased projection.
Known secrets are not here: `knownset.KnownSecrets` indexes them the same way for both backends.
Both scan text projected to one byte per character (non-ASCII -> 0x80 for Hyperscan), so offsets need no
mapping, and rule patterns are compiled with re.ASCII so that projection is exact.
"""
from __future__ import annotations

import codecs
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from .cache import cache_dir
from .digest import sha256
from .known import SEPARATED_GATE_HS
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


def hs_literal(value: str) -> bytes:
    """Hyperscan expression matching `value` as projected to ASCII (non-ASCII -> 0x80)."""
    return b"".join(b"\\x%02x" % (ord(c) if ord(c) < 128 else 0x80) for c in value)


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

    def prefilter(self, text: str, data: bytes) -> tuple[dict[int, RuleHits], None]:
        """Rule hits, and no separated-form gate (the known-secret set runs its `re` gate itself)."""
        return self.rule_hits(text, data), None

    def rule_hits(self, text: str, data: bytes | None = None) -> dict[int, RuleHits]:
        data = (project(text) if data is None else data).lower()
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

class HyperscanBackend:
    name = "hyperscan"

    def __init__(self, rules: tuple[Rule, ...]):
        import hyperscan

        self.rules = rules
        self._rule_db = HsDatabase(_compile_rule_db(hyperscan, rules))

    def rule_hits(self, text: str, data: bytes | None = None) -> dict[int, RuleHits]:
        return self.prefilter(text, project(text) if data is None else data)[0]

    def prefilter(self, text: str, data: bytes) -> tuple[dict[int, RuleHits], list[int]]:
        """Rule hits, and the end offsets of the separated-form gate, compiled into the same database so
        one pass over the text serves both."""
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
        gate = hits.pop(2 * n, [])
        out: dict[int, RuleHits] = {}
        for pid, ends in hits.items():
            if pid < n:
                out[pid] = RuleHits(ends, LOOKAROUND_MARGIN)
            else:
                out[pid - n] = RuleHits(sorted(ends), self.rules[pid - n].max_width + LOOKAROUND_MARGIN)
        return out, gate



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


def compile_cached(hs, name: str, exprs: list[bytes], flags: list[int]):
    """A Hyperscan block database for `exprs` (ids 0..n-1), loaded from the on-disk cache when it is there."""
    key = sha256(repr((getattr(hs, "__version__", ""), exprs, flags)).encode()).hexdigest()[:24]
    cache = cache_dir() / f"{name}-{key}.hsdb"
    try:
        return hs.loadb(cache.read_bytes(), hs.HS_MODE_BLOCK)
    except Exception:  # noqa: BLE001 - missing or stale cache: compile
        pass
    db = hs.Database(mode=hs.HS_MODE_BLOCK)
    db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags)
    _store(hs, cache, db)
    return db


def _store(hs, cache: Path, db) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(hs.dumpb(db))
        os.replace(tmp, cache)
    except OSError:
        pass


def _compile_rule_db(hs, rules: tuple[Rule, ...]):
    """Compile (or load from cache) the rule database.

    A rule is compiled as its own pattern in prefilter mode when Hyperscan accepts it and its width is
    modest; very wide rules (PEM blocks, JWTs) compile slowly, so they, and any rule Hyperscan rejects, are
    found by their keywords instead. Pattern ids are the rule index; keyword ids are rule index +
    len(rules), which tells `rule_hits` that a match may extend a whole rule width after the hit. Id
    2 * len(rules) is the known secrets' separated-form gate (`known.SEPARATED_GATE_HS`).
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

    # the cache key names the rules by their source, so a cached database loads without compiling or
    # measuring a single pattern in Python
    source = [(r.id, r.pattern, r.keywords) for r in rules]
    key = sha256(repr((getattr(hs, "__version__", ""), source, SEPARATED_GATE_HS)).encode()).hexdigest()[:24]
    cache = cache_dir() / f"rules-{key}.hsdb"
    try:
        return hs.loadb(cache.read_bytes(), hs.HS_MODE_BLOCK)
    except Exception:  # noqa: BLE001 - missing or stale cache: compile
        pass
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
                exprs.append(hs_literal(kw))
                ids.append(i + len(rules))
                flags.append(hs.HS_FLAG_CASELESS)
    exprs.append(SEPARATED_GATE_HS)
    ids.append(2 * len(rules))
    flags.append(hs.HS_FLAG_DOTALL)
    db = hs.Database(mode=hs.HS_MODE_BLOCK)
    try:
        db.compile(expressions=exprs, ids=ids, elements=len(exprs), flags=flags)
    except Exception:  # noqa: BLE001 - a user-supplied rule Hyperscan cannot take: find it, use its keywords
        bad = [i for i, r in enumerate(rules) if i not in fallback and not pattern_ok(r, i)]
        keep = [(e, i, f) for e, i, f in zip(exprs, ids, flags) if i not in bad]
        for i in bad:
            fallback.append(i)
            keep += [(hs_literal(kw), i + len(rules), hs.HS_FLAG_CASELESS) for kw in rules[i].keywords]
        exprs, ids, flags = (list(t) for t in zip(*keep))
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(expressions=exprs, ids=ids, elements=len(exprs), flags=flags)
    _store(hs, cache, db)
    return db
