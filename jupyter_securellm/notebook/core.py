"""Scan and scrub notebooks and text files: the pure core under the CLI, the git filter and the save hook.

Notebooks are scrubbed by splicing the file as stored: only the JSON string tokens that hold a finding
are re-encoded (the way nbformat writes strings: UTF-8 kept), every other byte stays as it was, so key
order, indentation, cell ids and the nbformat minor version survive, and a second scrub changes nothing.
"""
from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field

from .allowlist import has_pragma, pragma_allows
from .engine import Hit
from .fields import Field, NotebookError, check_notebook, iter_fields
from .jsonpos import encode_string, line_columns, locate, raw_offsets

__all__ = [
    "FileFinding",
    "FileResult",
    "FieldHit",
    "NotebookError",
    "ScanCache",
    "process_notebook",
    "process_text",
    "scrub_notebook_model",
    "scrub_text",
]

#: Fields are scanned in batches joined by this separator; no rule can match across a NUL.
_SEP = "\n\x00\n"
_BATCH_CHARS = 4 << 20


@dataclass(frozen=True, slots=True)
class FileFinding:
    """One secret, located in the file as stored (1-based lines and columns; end_column exclusive).

    Not `detect.Finding`, which holds character offsets into one scanned string: this one is what the CLI,
    the git filter and the save hook report, and its `to_dict()` is the JSON output format.
    """

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    rule_id: str
    fingerprint: str
    cell: int | None = None
    field: str | None = None

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "rule_id": self.rule_id,
            "fingerprint": self.fingerprint,
            "cell": self.cell,
            "field": self.field,
        }


@dataclass(slots=True)
class FileResult:
    path: str
    kind: str  # "notebook" | "text"
    findings: list = field(default_factory=list)  # reported FileFindings
    allowed: int = 0  # findings dropped by a pragma or the baseline
    new_text: str | None = None  # the scrubbed file, when scrubbing changed it


@dataclass(frozen=True, slots=True)
class FieldHit:
    """A finding inside one field of an in-memory notebook (the save hook's view)."""

    cell: int | None
    field: str
    line: int  # 1-based line within the field's text
    rule_id: str
    fingerprint: str
    column: int = 1  # 1-based, in characters of the field's text
    end_line: int = 0  # where the secret ends (end_column exclusive); 0 when not computed
    end_column: int = 0
    rel: tuple = ()  # the field's JSON path within its cell (or notebook), as iter_fields gives it

    def where(self) -> str:
        """'cells[2].source line 3' for notebooks, 'line 3' for text files; never the value."""
        name = f"cells[{self.cell}].{self.field}" if self.cell is not None else self.field
        return f"{name} line {self.line}" if name else f"line {self.line}"


# --------------------------------------------------------------------------------------------- scanning


class ScanCache:
    """Findings of texts already scanned, keyed by a digest of the text and the engine's version.

    The save hook keeps one: an autosave rewrites the whole notebook but usually changes one cell, so
    only changed fields are scanned again. The key includes the engine's known-secret version, so a
    secret newly read from Vault invalidates everything. Digests, not texts, are kept.
    """

    def __init__(self, max_entries: int = 50_000):
        self.max_entries = max_entries
        self._data: OrderedDict = OrderedDict()

    @staticmethod
    def key(text: str, version) -> tuple:
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        return version, len(text), digest

    def get(self, key):
        hits = self._data.get(key)
        if hits is not None:
            self._data.move_to_end(key)
        return hits

    def put(self, key, hits) -> None:
        self._data[key] = hits
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self):
        return len(self._data)


def _scan_texts(texts, engine, cache: ScanCache | None = None) -> list:
    """Hits for each text (same order), scanning many small texts in one engine call."""
    results = [[] for _ in texts]
    keys = {}  # index -> cache key, for texts to scan and remember
    if cache is not None:
        version = engine.version()
        for i, t in enumerate(texts):
            if t:
                key = ScanCache.key(t, version)
                cached = cache.get(key)
                if cached is None:
                    keys[i] = key
                else:
                    results[i] = list(cached)
        todo = list(keys)
    else:
        todo = [i for i, t in enumerate(texts) if t]

    def flush(batch):
        if len(batch) == 1:
            results[batch[0]] = engine.scan(texts[batch[0]])
            return
        starts = []
        pos = 0
        for i in batch:
            starts.append(pos)
            pos += len(texts[i]) + len(_SEP)
        joined = _SEP.join(texts[i] for i in batch)
        for h in engine.scan(joined):
            k = bisect_right(starts, h.start) - 1
            base, n = starts[k], len(texts[batch[k]])
            if h.start - base >= n:  # began in a separator: belongs to the next text
                k += 1
                base, n = starts[k], len(texts[batch[k]])
            s, e = max(h.start - base, 0), min(h.end - base, n)
            if e > s:
                results[batch[k]].append(Hit(s, e, h.rule_id, h.fingerprint))

    batch, size = [], 0
    for i in todo:
        n = len(texts[i])
        if batch and size + n > _BATCH_CHARS:
            flush(batch)
            batch, size = [], 0
        batch.append(i)
        size += n + len(_SEP)
    if batch:
        flush(batch)
    for i, key in keys.items():
        cache.put(key, tuple(results[i]))
    return results


def _keep(hits, text, baseline, counter) -> list:
    """Drop hits allowed by an inline pragma or the baseline; count them in counter[0]."""
    if not hits:
        return hits
    pragmas = has_pragma(text)
    kept = []
    for h in hits:
        if (baseline is not None and h.fingerprint in baseline) or (pragmas and pragma_allows(text, h.start)):
            counter[0] += 1
        else:
            kept.append(h)
    return kept


def _merge(hits) -> list:
    """Sorted, non-overlapping hits (an overlap keeps the first rule id)."""
    merged = []
    for h in sorted(hits, key=lambda h: (h.start, -h.end)):
        if merged and h.start < merged[-1].end:
            last = merged[-1]
            if h.end > last.end:
                merged[-1] = last._replace(end=h.end)
        else:
            merged.append(h)
    return merged


def _redact(text: str, merged, engine, base: int = 0) -> str:
    out, pos = [], 0
    for h in merged:
        s, e = h.start - base, h.end - base
        out.append(text[pos:s])
        out.append(engine.placeholder(h.rule_id))
        pos = e
    out.append(text[pos:])
    return "".join(out)


# --------------------------------------------------------------------------------------------- text files


def process_text(text: str, path: str, engine, baseline=None, scrub: bool = False) -> FileResult:
    result = FileResult(path, "text")
    counter = [0]
    hits = _keep(engine.scan(text), text, baseline, counter)
    result.allowed = counter[0]
    if not hits:
        return result
    hits.sort(key=lambda h: (h.start, h.end))
    offsets = [h.start for h in hits] + [h.end for h in hits]
    pos = line_columns(text, offsets)
    n = len(hits)
    result.findings = [
        FileFinding(path, *pos[i], *pos[n + i], h.rule_id, h.fingerprint) for i, h in enumerate(hits)
    ]
    if scrub:
        result.new_text = _redact(text, _merge(hits), engine)
    return result


def scrub_text(text: str, engine, baseline=None, cache: ScanCache | None = None) -> tuple:
    """(scrubbed text, hits kept) for an in-memory text; the text is returned as is when clean."""
    hits = _keep(_scan_texts([text], engine, cache)[0], text, baseline, [0])
    if not hits:
        return text, []
    return _redact(text, _merge(hits), engine), sorted(hits)


# --------------------------------------------------------------------------------------------- notebooks


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs):
    """A JSON object with a key twice would hide the first value from every reader (and from us)."""
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _DuplicateKey()  # the key itself is not quoted: it could be anything
    return d


def load_notebook(text: str):
    """Parse and check notebook JSON; returns (notebook dict, offset of the JSON text in ``text``)."""
    start = 1 if text.startswith("\ufeff") else 0
    try:
        nb = json.loads(text[start:] if start else text, object_pairs_hook=_unique_keys)
    except _DuplicateKey:
        raise NotebookError("a JSON object has the same key twice: refusing to guess which one counts") from None
    except json.JSONDecodeError as exc:
        raise NotebookError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise NotebookError("not a notebook: JSON nested too deeply") from None
    check_notebook(nb)
    return nb, start


def _field_hits(fields, engine, baseline, counter, cache=None) -> list:
    texts = [f.text for f in fields]
    all_hits = _scan_texts(texts, engine, cache)
    return [_keep(h, t, baseline, counter) for h, t in zip(all_hits, texts)]


def _safe_name(fld: Field, engine) -> str:
    """The field's path for reports; a JSON key that is itself a secret is shown redacted."""
    name = fld.name
    hits = engine.scan(name)
    return _redact(name, _merge(hits), engine) if hits else name


def _segments(value) -> list:
    return [value] if isinstance(value, str) else value


def _seg_starts(segs) -> list:
    starts, pos = [], 0
    for s in segs:
        starts.append(pos)
        pos += len(s)
    return starts


def _seg_range(starts, h) -> tuple:
    """(first, last) segment a hit touches; an end on a segment boundary belongs to the earlier one."""
    a = bisect_right(starts, h.start) - 1
    return a, max(bisect_left(starts, h.end) - 1, a)


def _replacements(fld: Field, merged, engine) -> list:
    """[(first segment, last segment, hits, new strings)] that scrub ``fld``.

    A hit inside one segment rewrites that segment. A hit across segments (a PEM key over several
    source lines) rewrites the run of segments, re-split at newlines as nbformat would store it.
    """
    segs = _segments(fld.value)
    starts = _seg_starts(segs)
    clusters = []  # [first, last, [hits]]
    for h in merged:
        a, b = _seg_range(starts, h)
        if clusters and a <= clusters[-1][1]:
            clusters[-1][1] = max(clusters[-1][1], b)
            clusters[-1][2].append(h)
        else:
            clusters.append([a, b, [h]])
    out = []
    for a, b, hs in clusters:
        joined = "".join(segs[a : b + 1])
        redacted = _redact(joined, hs, engine, base=starts[a])
        new = redacted.splitlines(keepends=True) if b > a else [redacted]
        out.append((a, b, hs, new or [""]))
    return out


def process_notebook(text: str, path: str, engine, baseline=None, scrub: bool = False) -> FileResult:
    """Scan (and with ``scrub``, rewrite) notebook JSON text as stored."""
    nb, json_start = load_notebook(text)
    result = FileResult(path, "notebook")
    fields = list(iter_fields(nb))
    counter = [0]
    per_field = _field_hits(fields, engine, baseline, counter)
    result.allowed = counter[0]
    hit_fields = [(f, hs) for f, hs in zip(fields, per_field) if hs]
    if not hit_fields:
        return result

    try:
        spans = locate(text, [f.path for f, _ in hit_fields], start=json_start)
    except (ValueError, IndexError) as exc:  # duplicate keys and the like: refuse rather than guess
        raise NotebookError(f"cannot map findings to the file: {exc}") from None

    # Raw offsets of every hit's start and end, then line/column for all of them in one pass.
    raw, meta = [], []
    for fld, hits in hit_fields:
        segs = _segments(fld.value)
        tokens = spans[fld.path]
        if len(tokens) != len(segs):  # pragma: no cover - the parse and the walk disagree: a bug
            raise NotebookError(f"internal error: cannot map findings in {_safe_name(fld, engine)} to the file")
        starts = _seg_starts(segs)
        wanted = {}  # segment -> [(slot, offset in segment)]
        for h in hits:
            for pos, seg in zip((h.start, h.end), _seg_range(starts, h)):
                wanted.setdefault(seg, []).append((len(raw), pos - starts[seg]))
                raw.append(0)
            meta.append((fld, h))
        for seg, slots in wanted.items():
            mapped = raw_offsets(text, tokens[seg], [off for _, off in slots])
            for (slot, _), r in zip(slots, mapped):
                raw[slot] = r
    pos = line_columns(text, raw)
    names = {fld.path: _safe_name(fld, engine) for fld, _ in hit_fields}
    findings = [
        FileFinding(path, *pos[2 * i], *pos[2 * i + 1], h.rule_id, h.fingerprint, fld.cell, names[fld.path])
        for i, (fld, h) in enumerate(meta)
    ]
    findings.sort(key=lambda f: (f.line, f.column, f.end_line, f.end_column, f.rule_id))
    result.findings = findings

    if scrub:
        splices = []
        renames = _key_renames(nb, hit_fields, engine)
        for fld, hits in hit_fields:
            tokens = spans[fld.path]
            if fld.is_key:  # a secret used as an object key: the whole key token is replaced
                splices.append((tokens[0][0], tokens[0][1], encode_string(renames[fld.path])))
                continue
            starts = _seg_starts(_segments(fld.value))
            for a, b, hs, new in _replacements(fld, _merge(hits), engine):
                if a == b:  # inside one string token: swap just the secret's raw characters
                    base = starts[a]
                    raw_se = raw_offsets(text, tokens[a], [o - base for h in hs for o in (h.start, h.end)])
                    for i, h in enumerate(hs):
                        splices.append((raw_se[2 * i], raw_se[2 * i + 1], encode_string(engine.placeholder(h.rule_id))[1:-1]))
                else:  # across tokens (a PEM block over source lines): re-encode that run of lines
                    sep = text[tokens[a][1] : tokens[a + 1][0]]
                    splices.append((tokens[a][0], tokens[b][1], sep.join(encode_string(s) for s in new)))
        splices.sort()
        out, last = [], 0
        for s, e, new in splices:
            out.append(text[last:s])
            out.append(new)
            last = e
        out.append(text[last:])
        new_text = "".join(out)
        try:  # the splice only swaps string tokens; prove it before anyone writes it
            json.loads(new_text[json_start:])
        except ValueError as exc:  # pragma: no cover - would be a bug here
            raise NotebookError(f"internal error: scrubbed notebook does not parse ({exc.msg}); nothing written") from None
        result.new_text = new_text
    return result


def scrub_notebook_model(nb: dict, engine, baseline=None, redact: bool = True, cache: ScanCache | None = None) -> list:
    """Scrub an in-memory notebook (a contents-API model's ``content``) in place.

    Returns the FieldHits found (after allowlisting). With ``redact=False`` nothing is changed, for
    the save hook's block and warn modes.
    """
    check_notebook(nb)
    fields = list(iter_fields(nb))
    per_field = _field_hits(fields, engine, baseline, [0], cache)
    found = []
    hit_fields = [(f, h) for f, h in zip(fields, per_field) if h]
    renames = _key_renames(nb, hit_fields, engine) if redact else {}
    for fld, hits in hit_fields:
        text, name = fld.text, _safe_name(fld, engine)
        for h in sorted(hits):
            (line, col), (end_line, end_col) = _line_col(text, h.start), _line_col(text, h.end)
            found.append(FieldHit(fld.cell, name, line, h.rule_id, h.fingerprint, col, end_line, end_col, fld.rel))
        if not redact or fld.is_key:
            continue
        merged = _merge(hits)
        if isinstance(fld.value, str):
            new_value = _redact(fld.value, merged, engine)
        else:
            new_value = list(fld.value)
            for a, b, _hits, new in reversed(_replacements(fld, merged, engine)):
                new_value[a : b + 1] = new
        _assign(nb, fld.path, new_value)
    # keys last and deepest first, so the paths of everything inside a renamed member still resolve
    for path in sorted(renames, key=len, reverse=True):
        obj = _resolve(nb, path[:-1])
        old_key = path[-1].key
        items = [(renames[path] if k == old_key else k, v) for k, v in obj.items()]
        obj.clear()
        obj.update(items)
    return found


def _line_col(text: str, offset: int) -> tuple:
    """1-based (line, column) of a character offset in a field's text."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _resolve(root, path):
    node = root
    for part in path:
        node = node[part]
    return node


def _assign(root, path, value):
    _resolve(root, path[:-1])[path[-1]] = value


def _key_renames(nb, hit_fields, engine) -> dict:
    """New names for keys that hold a secret: {key path: new key}, unique within their object.

    Two secret keys of one object redact to the same placeholder, and a duplicated key would make every
    JSON reader drop a member, so later ones get a numeric suffix.
    """
    renames = {}
    for fld, hits in hit_fields:
        if not fld.is_key:
            continue
        obj = _resolve(nb, fld.path[:-1])
        taken = set(obj) | set(renames.values())
        base = _redact(fld.value, _merge(hits), engine)
        new, n = base, 1
        while new in taken:
            n += 1
            new = f"{base} {n}"
        renames[fld.path] = new
    return renames
