"""The answer side: redaction of whole answers and of streams, chunk by chunk.

Streamed text fields (`STREAMED_KEYS` inside a choice's `delta`) each get their own StreamRedactor per
choice (tool-call arguments and reasoning included), so a secret split over chunks is caught; every other
string of a chunk (id, model, role, and a streamed-looking name outside the delta) is redacted like a
whole answer, with a per-stream memo of strings already found clean. One walk per chunk does both. A
stream that ends without finish_reason still releases what the redactors held back, redacted.
"""
from __future__ import annotations

from typing import Any, AsyncIterator

from ..redacting import redact_json
from .errors import BrokerError
from .provider import loaded_litellm, provider_error, within


class AnswerRedactor:
    """Redacts answers and stream chunks with the broker's Redactor."""

    def __init__(self, redactor, log=None):
        self.redactor = redactor
        self.log = log

    def redact_obj(self, obj, skip_content: bool = False, clean: "_CleanStrings | None" = None):
        """Redact every string in a JSON-like object; with `skip_content`, a stream chunk whose delta
        text fields the StreamRedactors have already handled (every other string is redacted here).

        Fast path: one scan over all the strings joined; only when it finds something is each
        string redacted on its own (the join can only add matches, never hide one). A stream passes
        `clean`, the strings already found clean in its earlier chunks with the same set of known
        secrets: only the new ones are scanned. The result is the same as redacting each string.
        """
        strings: list = []
        if skip_content:
            _chunk_strings(obj, strings, None)
        else:
            _collect(obj, strings)
        return self._redact_rest(obj, strings, skip_content, clean)

    def _redact_rest(self, obj, strings: list, chunk: bool, clean: "_CleanStrings | None"):
        """`obj` as it is if `strings` (its strings outside the streamed delta fields) hold no secret."""
        if not strings:
            return obj
        scanner = self.redactor.scanner
        if clean is not None:
            strings = clean.unseen(strings, getattr(scanner, "known_version", None))
            if not strings:
                return obj
        if not scanner.scan("\n".join(strings)):
            if clean is not None:
                clean.add(strings)
            return obj
        if chunk:
            return _redact_chunk(obj, self.redactor.redact)
        return redact_json(obj, self.redactor.redact)

    async def stream(self, resp, alias: str, timeout: float) -> AsyncIterator[dict]:
        """Redacted chunks of a litellm stream; provider failures become one BrokerError."""
        fields = _DeltaStreams(self.redactor)  # one StreamRedactor per streamed text field of each choice
        clean = _CleanStrings()  # this stream's id/model/role strings repeat in every chunk: scan them once
        last = None
        it = resp.__aiter__()
        try:
            while True:
                try:  # an idle stream (slow provider) ends with a timeout error event
                    chunk = await within(it.__anext__(), timeout)
                except StopAsyncIteration:
                    break
                d = chunk.model_dump()
                last = d
                strings: list = []  # one walk: streamed delta fields fed, every other string collected
                _chunk_strings(d, strings, fields)
                yield self._redact_rest(d, strings, True, clean)
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, BrokerError):
                raise
            if self.log:
                self.log.warning("SecureLLM: stream for model %r broke: %s", alias,
                                 self.redactor.redact(f"{type(exc).__name__}: {exc}"))
            litellm = loaded_litellm()
            raise (provider_error(exc, litellm, timeout, getattr(resp, "guard", None),
                                  getattr(resp, "model_config", None)) if litellm else
                   BrokerError("provider_error", "The provider stream broke; retry.")) from None
        finally:  # the client went away, or we are done: release the provider connection now
            close = getattr(resp, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception as exc:  # noqa: BLE001 - the connection is dropped either way
                    if self.log:
                        self.log.debug("SecureLLM: closing a provider stream: %s", type(exc).__name__)
        # a stream that ended without finish_reason: emit what the redactors still hold
        for idx in fields.choices():
            delta: dict = {}
            fields.flush_into(idx, delta)
            if delta and last is not None:
                yield {"id": last.get("id"), "object": "chat.completion.chunk", "created": last.get("created"),
                       "model": last.get("model"),
                       "choices": [{"index": idx, "delta": delta, "finish_reason": None}]}


class _CleanStrings:
    """Strings of one stream already scanned and found clean, valid for one `known_version`.

    Only for scanners that expose `known_version` (the set of known secrets can grow while a stream
    runs: then everything is scanned again). Bounded, so a long stream of distinct strings
    (tool-call arguments) does not grow it without limit.
    """

    __slots__ = ("_seen", "_version")
    LIMIT = 512

    def __init__(self):
        self._seen: set[str] = set()
        self._version = None

    def unseen(self, strings: list, version) -> list:
        if version is None:
            return strings
        if version != self._version:
            self._seen.clear()
            self._version = version
        seen = self._seen
        return [s for s in strings if s not in seen]

    def add(self, strings: list) -> None:
        # the version was read (in unseen) before the scan: a secret added meanwhile bumps it and
        # empties the set at the next chunk, so a string is never trusted across a version change
        if self._version is not None and len(self._seen) < self.LIMIT:
            self._seen.update(strings)


#: Text fields of a streamed delta that arrive in pieces: each gets its own StreamRedactor, so a secret
#: split over chunks is caught (tool-call arguments and reasoning included, not just the content).
STREAMED_KEYS = frozenset({"content", "reasoning_content", "refusal", "arguments", "thinking", "text"})


class _DeltaStreams:
    """StreamRedactors keyed by (choice index, field path); tool calls are told apart by their `index`."""

    def __init__(self, redactor):
        self._redactor = redactor
        self._streams: dict[tuple, Any] = {}

    def choices(self) -> list[int]:
        return sorted({k[0] for k in self._streams})

    def feed(self, idx: int, delta: dict, others: list | None = None) -> None:
        """Stream-redact the text fields of `delta` in place; append every other string to `others`."""
        self._walk(idx, delta, (), others)

    def _walk(self, idx, obj, path, others):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if v is None:  # most delta fields, in every chunk
                    continue
                if isinstance(v, str):
                    if k in STREAMED_KEYS:
                        key = (idx, path + (k,))
                        sr = self._streams.get(key)
                        if sr is None:
                            sr = self._streams[key] = self._redactor.stream()
                        obj[k] = sr.feed(v)
                    elif others is not None:
                        others.append(v)
                elif isinstance(v, (dict, list)):
                    self._walk(idx, v, path + (k,), others)
                elif others is not None:
                    _collect(v, others)
        elif isinstance(obj, list):
            for pos, v in enumerate(obj):
                if isinstance(v, (dict, list)):
                    tag = v.get("index", pos) if isinstance(v, dict) else pos
                    self._walk(idx, v, path + (("#", tag),), others)
                elif others is not None:  # a string item is no streamed field: redacted whole
                    _collect(v, others)

    @staticmethod
    def _walk_rest(obj, out: list) -> None:
        """The strings of an already fed delta that are not its streamed text fields."""
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, str):
                    if k not in STREAMED_KEYS:
                        out.append(v)
                elif isinstance(v, (dict, list)):
                    _DeltaStreams._walk_rest(v, out)
                elif v is not None:
                    _collect(v, out)
        elif isinstance(obj, list):
            for v in obj:
                if isinstance(v, (dict, list)):
                    _DeltaStreams._walk_rest(v, out)
                else:
                    _collect(v, out)

    def flush_into(self, idx: int, delta: dict) -> None:
        """Append what the choice's redactors hold back to `delta` (at each field's path) and reset them."""
        for key in [k for k in self._streams if k[0] == idx]:
            rest = self._streams.pop(key).flush()
            if rest:
                _append_at(delta, key[1], rest)


def _append_at(obj: dict, path: tuple, text: str) -> None:
    """Append `text` to the string at `path` in a delta, creating dicts and indexed list items as needed."""
    *parents, leaf = path
    cur: Any = obj
    for pos, step in enumerate(parents):
        if isinstance(step, tuple):  # ("#", index) inside a list of indexed items
            item = next((x for x in cur if isinstance(x, dict) and x.get("index") == step[1]), None)
            if item is None:
                item = {"index": step[1]}
                cur.append(item)
            cur = item
        else:
            nxt = cur.get(step)
            if nxt is None:
                nxt = [] if isinstance(path[pos + 1], tuple) else {}
                cur[step] = nxt
            cur = nxt
    cur[leaf] = (cur.get(leaf) or "") + text


def _collect(obj, out: list) -> None:
    """Every string in `obj` (dict values, list and tuple items, and str subclasses)."""
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            if v is not None:
                _collect(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _collect(v, out)


def _chunk_strings(d: dict, out: list, fields: "_DeltaStreams | None") -> None:
    """One walk over a stream chunk: with `fields`, feed each choice's delta text fields to their
    StreamRedactors (and release what they hold at finish_reason); append every string that is not
    such a field to `out`, for the whole-string scan. A name in STREAMED_KEYS outside a delta (a
    choice's `text`, provider fields) is no streamed field: it is collected like any other string."""
    for k, v in d.items():
        if v is None:
            continue
        if k != "choices" or type(v) is not list:
            _collect(v, out)
            continue
        for choice in v:
            if type(choice) is not dict:
                _collect(choice, out)
                continue
            idx = choice.get("index", 0)
            for ck, cv in choice.items():
                if ck == "delta" and type(cv) is dict:
                    if fields is not None:
                        fields.feed(idx, cv, out)
                    else:  # already fed: collect the rest (redact_obj on a fed chunk)
                        _DeltaStreams._walk_rest(cv, out)
                elif cv is not None:
                    _collect(cv, out)
            if fields is not None and choice.get("finish_reason"):
                delta = choice.get("delta")
                if type(delta) is not dict:
                    delta = {}
                fields.flush_into(idx, delta)
                choice["delta"] = delta


def _redact_chunk(obj, redact, in_delta: bool = False, top: bool = True):
    """A copy of a stream chunk with every string redacted except the delta text fields (already
    stream-redacted): a string directly under a STREAMED_KEYS name inside a choice's `delta`."""
    if isinstance(obj, str):
        return redact(obj) if obj else obj
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if in_delta and k in STREAMED_KEYS and isinstance(v, str):
                out[k] = v
            elif top and k == "choices" and isinstance(v, list):
                out[k] = [{ck: _redact_chunk(cv, redact, ck == "delta", False) for ck, cv in c.items()}
                          if isinstance(c, dict) else _redact_chunk(c, redact, False, False) for c in v]
            else:
                out[k] = _redact_chunk(v, redact, in_delta, False)
        return out
    if isinstance(obj, list):
        return [_redact_chunk(v, redact, in_delta, False) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_redact_chunk(v, redact, in_delta, False) for v in obj)
    return obj
