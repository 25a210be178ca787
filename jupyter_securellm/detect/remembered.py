"""Values the rules found, remembered so that every later copy in the same text or stream is redacted too.

Some rules need context before a value: a keyword ("telegram"), a name (`api_key = `), an AWS key id
nearby. Once a match has consumed that context, the same value printed again later on the line, or on a
later line with no name beside it, is not found by the rule. A value a rule found is a secret wherever it
appears next, so whole-text redaction (`Redactor.redact`) and the stream redactor (`StreamRedactor`, which
keeps one `RememberedValues` per stream) both redact every copy that starts at or after the end of the
value's first finding. Copies *before* the first finding are left alone on purpose: a stream has already
emitted them when the value is found, and whole text must give the same output as any chunking of it.

Only the raw value is remembered (the secret group of a finding, never the context the rule matched), and
only values that cannot turn up by chance (see `rememberable`). A few values are looked for with
`str.find` each (C speed, ~0.1 ms per value per 3 MB); past `FIND_LIMIT` values, a q-gram index over each
value's longest run of letters and digits, as for known secrets (`knownset`), so the cost per text stays a
C-speed pass over its long runs whatever the number of values.
"""
from __future__ import annotations

from .filters import shannon_entropy
from .knownset import _ALNUM, _OFF_BITS, _OFF_MASK, _WIDE, RUN_MIN, _QgramIndex
from .scanner import Finding
from . import known as known_mod

#: Shortest value remembered. Redacting every later copy of a short value would redact ordinary text that
#: happens to equal it (an 8-character password that is also a word, a number, a hash prefix); a random
#: 16-character value turns up by chance about once in 62^16 positions. It is also the shortest run the
#: q-gram index can find (`knownset.RUN_MIN`).
MIN_LENGTH = RUN_MIN
#: Lowest Shannon entropy (bits per character) of a remembered value: a random 16-character hex value
#: scores ~3.3, a long readable word or a repeated pattern less, and those are what text repeats by chance.
MIN_ENTROPY = 3.0
#: Longest value remembered. Longer values (private-key blocks, JWTs, session tokens) are shapes their own
#: rules find on every copy; remembering them would only make a stream hold back more of its tail.
MAX_LENGTH = 1024
#: Memory bounds per text or stream: at most this many distinct values, and this many characters in all.
#: A stream keeps the first values it finds (never evicts), so whole text and every chunking of it
#: remember the same ones.
MAX_VALUES = 128
MAX_CHARS = 32_768
#: Up to this many values, each is looked for with `str.find`; more go through the q-gram index.
FIND_LIMIT = 32


def rememberable(value: str) -> bool:
    """Whether later copies of `value` should be redacted: long, random-looking, findable by the index."""
    if not (MIN_LENGTH <= len(value) <= MAX_LENGTH) or not value.isascii():
        return False
    if shannon_entropy(value) < MIN_ENTROPY:
        return False
    vb = value.encode("ascii")
    return _ALNUM_INDEX_PROBE.longest_run(vb) >= 0 or _WIDE_INDEX_PROBE.longest_run(vb) >= 0


_ALNUM_INDEX_PROBE = _QgramIndex(_ALNUM)
_WIDE_INDEX_PROBE = _QgramIndex(_WIDE)


class RememberedValues:
    """Found values (with their rule and fingerprint) and where each may first be copied, in one text or
    stream. Positions are absolute: offset 0 is the start of the text or of the stream.

    Not thread-safe on its own: `Redactor` makes one per call, `StreamRedactor` uses it under its lock.
    """

    __slots__ = ("values", "_rule_ids", "_fingerprints", "_since", "_ids", "_chars_used",
                 "_alnum", "_wide", "_indexed", "_by_prefix4", "_short", "_hold_chars", "_max_len", "_hold_indexed")

    def __init__(self):
        self.values: list[str] = []
        self._rule_ids: list[str] = []
        self._fingerprints: list[str] = []
        self._since: list[int] = []  # absolute position from which a copy counts (end of the first finding)
        self._ids: dict[str, int] = {}
        self._chars_used = 0
        # built on first use: the q-gram index once there are more than FIND_LIMIT values, the hold data
        # when a stream asks (whole-text redaction never does)
        self._alnum = _QgramIndex(_ALNUM)
        self._wide = _QgramIndex(_WIDE)
        self._indexed = 0
        self._by_prefix4: dict[str, list[int]] = {}
        self._short: set[str] = set()  # 1-, 2- and 3-character starts
        self._hold_chars: set[str] = set()
        self._max_len = 0
        self._hold_indexed = 0

    def __len__(self) -> int:
        return len(self.values)

    def add(self, value: str, rule_id: str, fp: str, since: int) -> bool:
        """Remember `value` (copies from absolute position `since` on); False when it is not rememberable,
        already remembered, or the bounds are reached."""
        if value in self._ids or not rememberable(value):
            return False
        if len(self.values) >= MAX_VALUES or self._chars_used + len(value) > MAX_CHARS:
            return False
        self._ids[value] = len(self.values)
        self.values.append(value)
        self._rule_ids.append(rule_id)
        self._fingerprints.append(fp)
        self._since.append(since)
        self._chars_used += len(value)
        return True

    def add_found(self, text: str, findings: list[Finding], base: int = 0) -> None:
        """Remember the value of each rule finding in `text` (which starts at absolute position `base`),
        in order. Known-secret findings are skipped: every form of a known secret is found anyway."""
        for f in findings:
            if f.rule_id != known_mod.RULE_ID and f.end - f.start >= MIN_LENGTH:
                self.add(text[f.start : f.end], f.rule_id, f.fingerprint, base + f.end)

    def copies(self, text: str, data: bytes, start: int = 0, base: int = 0) -> list[Finding]:
        """Findings for every remembered value in `text` starting at or after `start` and at or after
        where that value may first be copied. `data` is `project(text)`; `text` starts at absolute
        position `base`."""
        values, since = self.values, self._since
        if not values:
            return []
        out = []
        if len(values) <= FIND_LIMIT:
            find = text.find
            for idx, v in enumerate(values):
                p = find(v, max(start, since[idx] - base))
                while p != -1:
                    out.append(Finding(p, p + len(v), self._rule_ids[idx], self._fingerprints[idx], p))
                    p = find(v, p + 1)
            return out
        self._index()
        seen = set()
        for index in (self._alnum, self._wide):
            for p, code in index.candidates(data):
                idx, off = code >> _OFF_BITS, code & _OFF_MASK
                s = p - off
                if s < start or s + base < since[idx] or (s, idx) in seen:
                    continue
                v = values[idx]
                if text.startswith(v, s):
                    seen.add((s, idx))
                    out.append(Finding(s, s + len(v), self._rule_ids[idx], self._fingerprints[idx], s))
        return out

    def _index(self) -> None:
        for idx in range(self._indexed, len(self.values)):
            vb = self.values[idx].encode("ascii")
            for index in (self._alnum, self._wide):
                run = index.longest_run(vb)
                if run >= 0:  # every rememberable value has such a run
                    index.add(vb, run, idx)
                    break
        self._indexed = len(self.values)

    def hold_start(self, buf: str, start: int) -> int:
        """Earliest index >= start where a copy of a remembered value could be in progress at the end of
        `buf` (a tail that begins some value), else len(buf)."""
        n = len(buf)
        if not self.values or n <= start:
            return n
        if self._hold_indexed < len(self.values):
            for idx in range(self._hold_indexed, len(self.values)):
                value = self.values[idx]
                self._by_prefix4.setdefault(value[:4], []).append(idx)
                self._short.update((value[:1], value[:2], value[:3]))
                self._hold_chars.update(value)
                self._max_len = max(self._max_len, len(value))
            self._hold_indexed = len(self.values)
        lo = max(start, n - self._max_len + 1)
        chars = self._hold_chars
        i = n
        while i > lo and buf[i - 1] in chars:
            i -= 1
        values, by4 = self.values, self._by_prefix4
        for p in range(i, n):
            if n - p >= 4:
                cands = by4.get(buf[p : p + 4])
                if cands:
                    tail = buf[p:]
                    if any(values[k].startswith(tail) for k in cands):
                        return p
            elif buf[p:] in self._short:
                return p
        return n
