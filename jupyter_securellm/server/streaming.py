"""The answer side: redaction of whole answers and of streams, chunk by chunk.

Streamed text fields (`STREAMED_KEYS`) each get their own StreamRedactor per choice (tool-call
arguments and reasoning included), so a secret split over chunks is caught; every other string of
a chunk (id, model, role...) is redacted like a whole answer, with a per-stream memo of strings
already found clean. A stream that ends without finish_reason still releases what the redactors
held back, redacted.
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
        """Redact every string in a JSON-like object (delta content is stream-redacted instead).

        Fast path: one scan over all the strings joined; only when it finds something is each
        string redacted on its own (the join can only add matches, never hide one). A stream passes
        `clean`, the strings already found clean in its earlier chunks with the same set of known
        secrets: only the new ones are scanned. The result is the same as redacting each string.
        """
        strings = []
        _collect(obj, strings, skip_content)
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
        return redact_json(obj, self.redactor.redact, skip_keys=STREAMED_KEYS if skip_content else frozenset())

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
                for choice in d.get("choices") or []:
                    idx = choice.get("index", 0)
                    delta = choice.get("delta") or {}
                    fields.feed(idx, delta)
                    if choice.get("finish_reason"):
                        fields.flush_into(idx, delta)
                        choice["delta"] = delta
                yield self.redact_obj(d, skip_content=True, clean=clean)
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

    def feed(self, idx: int, delta: dict) -> None:
        self._walk(idx, delta, ())

    def _walk(self, idx, obj, path):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, str) and k in STREAMED_KEYS:
                    key = (idx, path + (k,))
                    sr = self._streams.get(key)
                    if sr is None:
                        sr = self._streams[key] = self._redactor.stream()
                    obj[k] = sr.feed(v)
                elif isinstance(v, (dict, list)):
                    self._walk(idx, v, path + (k,))
        elif isinstance(obj, list):
            for pos, v in enumerate(obj):
                tag = v.get("index", pos) if isinstance(v, dict) else pos
                self._walk(idx, v, path + (("#", tag),))

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


def _collect(obj, out: list, skip_content: bool, key=None) -> None:
    if isinstance(obj, str):
        if not (skip_content and key in STREAMED_KEYS):
            out.append(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _collect(v, out, skip_content, k)
    elif isinstance(obj, list):
        for v in obj:
            _collect(v, out, skip_content, key)
