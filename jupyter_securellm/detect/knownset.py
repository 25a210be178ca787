"""The set of known secrets, built to grow one value at a time to tens of thousands without a rebuild.

Each value expands into ~15 literal forms (see `known`). Compiling every form of every value into one
automaton (Hyperscan, Aho-Corasick) costs seconds per thousand values and must be redone on every add, so
the forms go into a q-gram index instead, where adding a value is a few dictionary inserts:

* A form's longest run of *run characters* (letters and digits; for forms without a long enough run, any
  printable ASCII but the space) of at least `RUN_MIN` characters is indexed by its `Q`-grams at the first
  `STRIDE` offsets. In the text, only runs of at least `RUN_MIN` run characters can hold such a form, and
  sampling each run every `STRIDE` characters is sure to hit one of the indexed q-grams
  (`STRIDE = RUN_MIN - Q + 1`). Runs are found with `bytes.translate` and `bytes.find`, at C speed; ordinary
  prose and logs have few of them, so the lookups cost little whatever the number of values.
* Forms without such a run (short values, values with spaces or non-ASCII characters) are found with
  `str.find`, one by one: a cost per value, fine for the usual handful.
* Separated forms (characters with whitespace, zero-width characters, ANSI codes or list punctuation in
  between) are gated by a pattern for "one character, separators, one character, ..." repeated
  `SEPARATED_GATE` times; inside a gated window the separators are removed, the literal index names the
  candidate values, and each candidate's exact separated pattern decides.

`hold_start` answers the stream redactor's question (could a form still be in progress at the end of the
buffer?) from the same data: sorted forms for prefixes, 4-grams of long values for pieces.
"""
from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from functools import lru_cache

from . import known as known_mod
from .backends import merge_windows, project
from .lazy_regex import LazyRegex

#: q-gram length, shortest indexed run, and sampling stride in the text (see the module docstring).
Q = 8
RUN_MIN = 16
STRIDE = RUN_MIN - Q + 1

_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_WIDE = frozenset(range(0x21, 0x7F))


def _table(chars: frozenset[int]) -> bytes:
    return bytes(ord("a") if b in chars else ord(" ") for b in range(256))


_SEED = b"a" * RUN_MIN
#: an index entry packs (form id, offset of the q-gram in the form) into one int
_OFF_BITS = 24
_OFF_MASK = (1 << _OFF_BITS) - 1

_GATE_PY = known_mod.SEPARATED_GATE_RE
_GATE_HS = known_mod.SEPARATED_GATE_HS
_GATE_WIDTH = known_mod.SEPARATED_GATE_WIDTH
_SEP_RX = LazyRegex(known_mod.SEPARATOR)
#: One separator unit and the trailing stretch of a separated form, both read backwards from the end of a
#: stream buffer (optional separators, then single characters each followed by separators, then maybe one
#: more character).
_REV_UNIT = rf"""(?:\s|[{known_mod.ZERO_WIDTH}]|m[0-9;]{{0,16}}\[\x1b|['"]\\{{0,3}}(?:\s|[nrt]\\{{1,2}}){{0,8}},['"]\\{{0,3}})"""
_REV_STRETCH = LazyRegex(rf"{_REV_UNIT}*(?:.{_REV_UNIT}+)*.?", re.S)
#: a separator cut short by the end of the buffer (`\x1b[3`, `', `), read backwards
#: (an escape or an escaped quote cut after its backslashes, too)
_REV_PARTIAL = LazyRegex(
    r"""(?:[0-9;]{0,16}\[\x1b|\x1b|\\{0,3}(?:\s|[nrt]\\{1,2}){0,8},['"]\\{0,3}|['"]\\{0,3}|\\{1,3})?"""
)


@lru_cache(maxsize=1)
def _hs_gate():
    """The separated-form gate compiled once per process for Hyperscan (None when it cannot be)."""
    try:
        import hyperscan as hs

        from .backends import HsDatabase, compile_cached

        return HsDatabase(compile_cached(hs, "separated-gate", [_GATE_HS], [hs.HS_FLAG_DOTALL]))
    except Exception:  # noqa: BLE001 - no Hyperscan: the `re` gate does the same job, slower
        return None


class _QgramIndex:
    """Forms indexed by the q-grams at the first STRIDE offsets of one run of `chars` (see module doc)."""

    __slots__ = ("chars", "table", "grams")

    def __init__(self, chars: frozenset[int]):
        self.chars = chars
        self.table = _table(chars)
        self.grams: dict[bytes, int | list[int]] = {}

    def longest_run(self, form_bytes: bytes) -> int:
        """Offset of the form's longest run of `chars` if it has RUN_MIN or more, else -1."""
        mask = form_bytes.translate(self.table)
        best, best_len = -1, RUN_MIN - 1
        pos = mask.find(_SEED)
        while pos != -1:
            end = mask.find(b" ", pos)
            end = len(mask) if end == -1 else end
            if end - pos > best_len:
                best, best_len = pos, end - pos
            pos = mask.find(_SEED, end)
        return best

    def add(self, form_bytes: bytes, run: int, form_id: int) -> None:
        setdefault = self.grams.setdefault
        base = form_id << _OFF_BITS
        for j in range(run, run + STRIDE):
            code = base | j
            old = setdefault(form_bytes[j : j + Q], code)
            if old is not code:  # the q-gram is shared (a fragment and its value start alike): keep both
                self.grams[form_bytes[j : j + Q]] = [old, code] if type(old) is int else old + [code]

    def candidates(self, data: bytes) -> list[tuple[int, int]]:
        """(text position, code) for every sampled q-gram of `data` that some form has."""
        if not self.grams:
            return []
        mask = data.translate(self.table)
        n = len(mask)
        get = self.grams.get
        out = []
        pos = mask.find(_SEED)
        while pos != -1:
            end = mask.find(b" ", pos)
            end = n if end == -1 else end
            for p in range(pos, end - Q + 1, STRIDE):
                hit = get(data[p : p + Q])
                if hit is not None:
                    if type(hit) is int:
                        out.append((p, hit))
                    else:
                        out.extend((p, c) for c in hit)
            pos = mask.find(_SEED, end)
        return out


class _SortedStrings:
    """A sorted list that grows cheaply: new items go to a small sorted list, merged in when it grows."""

    __slots__ = ("main", "recent")

    _MERGE_AT = 2048

    def __init__(self):
        self.main: list[str] = []
        self.recent: list[str] = []

    def add(self, item: str) -> None:
        bisect.insort(self.recent, item)
        if len(self.recent) > self._MERGE_AT:
            self.main = sorted(self.main + self.recent)  # both sorted: Timsort merges two runs
            self.recent = []

    def has_prefix(self, s: str) -> bool:
        for lst in (self.main, self.recent):
            i = bisect.bisect_left(lst, s)
            if i < len(lst) and lst[i].startswith(s):
                return True
        return False


class KnownSecrets:
    """Registered values and every form of them, searchable in text and in the tail of a stream."""

    def __init__(self, *, hyperscan: bool = False):
        self._use_hs_gate = hyperscan
        self.secrets: list[str] = []
        self.fingerprints: list[str] = []
        self._ids: dict[str, int] = {}
        self.version = 0
        self._lock = threading.RLock()
        # literal forms
        self._forms: list[str] = []
        self._owner: list[int] = []
        self._alnum = _QgramIndex(_ALNUM)
        self._wide = _QgramIndex(_WIDE)
        self._small: list[int] = []  # ids of forms found with str.find
        # separated forms
        self._separated: list[int] = []  # ids of values long enough to be caught separated
        self._sep_always: list[int] = []  # ... of those, the values that contain separator characters
        self._sep_width = 0
        self._sep_rx: OrderedDict[int, re.Pattern] = OrderedDict()
        # stream hold
        self._prefixes = _SortedStrings()  # every form except fragments (those are held as pieces)
        self._prefix4: set[str] = set()
        self._short_prefixes: set[str] = set()  # every 1-, 2- and 3-character start of a form
        self._hold_chars: set[str] = set()  # every character any form contains
        self._max_form = 0
        self._sep_prefixes = _SortedStrings()
        self._sep_prefix4: set[str] = set()
        self._piece_grams: set[str] = set()  # 4-grams of values caught in pieces (and separated)

    def __len__(self) -> int:
        return len(self.secrets)

    # -- registering ---------------------------------------------------------------------------------
    def add(self, value: str, fingerprint: str) -> bool:
        """Index `value` and its forms; False when it was already known. Costs O(its forms), not O(set)."""
        with self._lock:
            if value in self._ids:
                return False
            idx = len(self.secrets)
            self.fingerprints.append(fingerprint)  # first: a match never names a value without one
            self.secrets.append(value)
            self._ids[value] = idx
            frags = set(known_mod.fragments(value))
            forms = sorted(known_mod.variants(value))
            for form in forms:
                self._add_form(form, idx)
                if form not in frags:
                    self._prefixes.add(form)
                    self._prefix4.add(form[:4])
                    self._short_prefixes.update((form[:1], form[:2], form[:3]))
                    self._max_form = max(self._max_form, len(form))
            self._hold_chars.update("".join(forms))
            if frags or len(value) >= known_mod.MIN_SEPARATED_LENGTH:
                self._piece_grams.update({value[i : i + 4] for i in range(len(value) - 3)})
            if len(value) >= known_mod.MIN_SEPARATED_LENGTH:
                self._separated.append(idx)
                if _SEP_RX.search(value):
                    # its own characters would be squeezed away with the separators: always a candidate,
                    # and held when a stream ends in what the value looks like squeezed
                    self._sep_always.append(idx)
                    squeezed = _SEP_RX.sub("", value)
                    self._sep_prefixes.add(squeezed)
                    self._sep_prefix4.add(squeezed[:4])
                self._sep_width = max(self._sep_width, known_mod.separated_max_width(value))
                self._sep_prefixes.add(value)
                self._sep_prefix4.add(value[:4])
            self.version += 1
            return True

    def _add_form(self, form: str, idx: int) -> None:
        fid = len(self._forms)
        self._forms.append(form)
        self._owner.append(idx)
        if form.isascii():
            fb = form.encode("ascii")
            for index in (self._alnum, self._wide):
                run = index.longest_run(fb)
                if run >= 0:
                    index.add(fb, run, fid)
                    return
        self._small.append(fid)

    # -- scanning ------------------------------------------------------------------------------------
    def matches(self, text: str, data: bytes | None = None, gate: list[int] | None = None) -> list[tuple[int, int, int]]:
        """(start, end, value index) of every form in `text`.

        `data` is `project(text)` if already made; `gate` the end offsets of the Hyperscan separated-form
        gate if the rules' scan already ran it (see `backends.HyperscanBackend.prefilter`).
        """
        if not self.secrets:
            return []
        if data is None:
            data = project(text)
        out = self._literal_matches(text, data)
        if self._separated:
            out.extend(self._separated_matches(text, data, gate))
        return out

    def _literal_matches(self, text: str, data: bytes) -> list[tuple[int, int, int]]:
        forms, owner = self._forms, self._owner
        out = []
        seen = set()
        for index in (self._alnum, self._wide):
            for p, code in index.candidates(data):
                fid, off = code >> _OFF_BITS, code & _OFF_MASK
                start = p - off
                if (start, fid) in seen:
                    continue
                form = forms[fid]
                if start >= 0 and text.startswith(form, start):
                    seen.add((start, fid))
                    out.append((start, start + len(form), owner[fid]))
        for fid in self._small:
            form = forms[fid]
            find = text.find
            p = find(form)
            while p != -1:
                out.append((p, p + len(form), owner[fid]))
                p = find(form, p + 1)
        return out

    def _gate_ends(self, text: str, data: bytes, coarse: list[int] | None) -> list[int]:
        if coarse is None:
            gate = _hs_gate() if self._use_hs_gate else None
            if gate is None:
                return [m.end() for m in _GATE_PY.finditer(text)]
            coarse = []
            gate.scan(data, lambda _i, _f, to, _fl, _c: coarse.append(to) if not coarse or coarse[-1] != to else None)
        ends = []
        for ws, we in merge_windows(coarse, _GATE_WIDTH, 0, len(text)):
            ends.extend(m.end() for m in _GATE_PY.finditer(text, ws, we))
        return ends

    def _separated_matches(self, text: str, data: bytes, gate: list[int] | None) -> list[tuple[int, int, int]]:
        ends = self._gate_ends(text, data, gate)
        if not ends:
            return []
        out = []
        width = self._sep_width
        for ws, we in merge_windows(ends, _GATE_WIDTH + width, width, len(text)):
            window = text[ws:we]
            squeezed = _SEP_RX.sub("", window)
            candidates = {idx for _s, _e, idx in self._literal_matches(squeezed, project(squeezed))}
            candidates.update(self._sep_always)
            for idx in sorted(candidates):
                if len(self.secrets[idx]) < known_mod.MIN_SEPARATED_LENGTH:
                    continue
                rx = self._separated_rx(idx)
                out.extend((m.start(), m.end(), idx) for m in rx.finditer(text, ws, we))
        return out

    def _separated_rx(self, idx: int) -> re.Pattern:
        rx = self._sep_rx.get(idx)
        if rx is None:
            rx = self._sep_rx[idx] = re.compile(known_mod.separated_pattern(self.secrets[idx]))
            while len(self._sep_rx) > 256:
                self._sep_rx.popitem(last=False)
        else:
            self._sep_rx.move_to_end(idx)
        return rx

    # -- streams -------------------------------------------------------------------------------------
    def hold_start(self, buf: str, start: int) -> int:
        """Earliest index >= start where a form of a known value could be in progress at the end of `buf`.

        Three ways: a suffix that begins a literal form; a suffix of 4+ characters that could be a piece
        of a long value; a separated form whose characters so far begin a value.
        """
        n = len(buf)
        if not self.secrets or n <= start:
            return n
        hold = n
        # literal forms: only the tail made of characters some form contains can be one in progress
        chars = self._hold_chars
        lo = max(start, n - self._max_form)
        i = n
        while i > lo and buf[i - 1] in chars:
            i -= 1
        for p in range(i, n):
            if n - p >= 4:
                if buf[p : p + 4] in self._prefix4 and self._prefixes.has_prefix(buf[p:]):
                    hold = p
                    break
            elif buf[p:] in self._short_prefixes:
                hold = p
                break
        # pieces: the longest suffix whose every 4-gram belongs to a long value (conservative)
        grams = self._piece_grams
        j = n - 4
        while j >= max(start, i) and buf[j : j + 4] in grams:
            j -= 1
        if j + 1 <= n - 4:
            hold = min(hold, j + 1)
        if self._separated:
            hold = min(hold, self._separated_hold(buf, start))
        return hold

    def _separated_hold(self, buf: str, start: int) -> int:
        """Start of a separated form in progress: the trailing stretch of single characters between
        separators (maybe ending in a separator cut short), if the characters so far begin a value."""
        n = len(buf)
        # as far back as the longest separated form of a registered value can reach: a list form is 5 to 7+
        # characters per character of the value, and a stretch cut short of its start no longer begins one
        lo = max(start, n - self._sep_width)
        rev = buf[lo:][::-1]
        hold = n
        cut = _REV_PARTIAL.match(rev).end()
        for c in {0, cut}:
            k = _REV_STRETCH.match(rev, c).end()
            if k - c >= 2 or c:
                hold = min(hold, self._stretch_hold(buf, n - k, n - c))
        return hold

    def _stretch_hold(self, buf: str, a: int, b: int) -> int:
        stretch = buf[a:b]
        kept: list[int] = []
        prev = 0
        for m in _SEP_RX.finditer(stretch):
            kept.extend(range(prev, m.start()))
            prev = m.end()
        kept.extend(range(prev, len(stretch)))
        squeezed = "".join(stretch[i] for i in kept)
        for p in range(len(squeezed)):
            s = squeezed[p:]
            if len(s) >= 4:
                if s[:4] in self._sep_prefix4 and self._sep_prefixes.has_prefix(s):
                    return a + kept[p]
            elif self._sep_prefixes.has_prefix(s):
                return a + kept[p]
        return len(buf)
