"""Where a JSON value sits in the file as stored.

`json.loads` gives the values but forgets where they were. This module finds the raw span of the
string tokens at a few JSON paths, without a second full parse in Python: it walks only the path
to each target and skips every other value with the C decoder (`raw_decode` / `scanstring`).
It also maps an offset in a *decoded* string to the offset of the same character in the raw
token (escapes such as ``\\n``, ``\\"`` and ``\\uXXXX`` make the two differ), and raw offsets to
1-based line and column.
"""
from __future__ import annotations

import json
import re
from json.decoder import scanstring
from typing import NamedTuple

__all__ = ["KeyRef", "Path", "locate", "raw_offsets", "line_columns", "encode_string"]

Path = tuple  # of str (object key) and int (array index)

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
# One escape in a JSON string; a \\uD8xx\\uDCxx surrogate pair decodes to one character.
_ESCAPE = re.compile(r"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", re.S)


class KeyRef(NamedTuple):
    """A path element naming the key token of an object member (not its value)."""

    key: str


class _Trie(dict):
    __slots__ = ("leaf", "keys_wanted")

    def __init__(self):
        super().__init__()
        self.leaf = False
        self.keys_wanted = False


def encode_string(value: str) -> str:
    """A JSON string token the way nbformat writes it (UTF-8 kept, not \\u-escaped)."""
    return json.dumps(value, ensure_ascii=False)


def locate(text: str, paths, start: int = 0) -> dict:
    """Raw spans of the string tokens at each path.

    Returns ``{path: [(start, end), ...]}``: one span for a string value, one per element for an
    array of strings. ``end`` is exclusive and both include the quotes. Raises ValueError if a path
    is missing or does not hold a string or an array of strings.
    """
    root = _Trie()
    for path in paths:
        node = root
        for part in path:
            if isinstance(part, KeyRef):
                node.keys_wanted = True
            node = node.setdefault(part, _Trie())
        node.leaf = True
    out: dict = {}
    i = _WS.match(text, start).end()
    _walk(text, i, root, (), out)
    missing = [p for p in paths if p not in out]
    if missing:
        raise ValueError(f"JSON path not found: {_fmt(missing[0])}")
    return out


_SAFE_KEYS = frozenset({"cells", "metadata", "outputs", "source", "text", "data", "traceback", "attachments",
                        "ename", "evalue", "widgets"})


def _fmt(path) -> str:
    """A path for an error message; free-text keys (which could be anything) are not shown."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" if p in _SAFE_KEYS else ".…" for p in path).lstrip(".")


def _walk(text: str, i: int, node: _Trie, path: tuple, out: dict) -> int:
    """Walk the value starting at text[i]; return the index just past it."""
    if node.leaf:
        return _record(text, i, path, out)
    c = text[i]
    if c == "{":
        i = _WS.match(text, i + 1).end()
        if text[i] == "}":
            return i + 1
        while True:
            if text[i] != '"':
                raise ValueError(f"expected a key at offset {i}")
            key_start = i
            key, i = scanstring(text, i + 1)
            if node.keys_wanted:
                ref = node.get(KeyRef(key))
                if ref is not None and ref.leaf:
                    out[path + (KeyRef(key),)] = [(key_start, i)]
            i = _WS.match(text, i).end()
            if text[i] != ":":
                raise ValueError(f"expected ':' at offset {i}")
            i = _WS.match(text, i + 1).end()
            child = node.get(key)
            i = _walk(text, i, child, path + (key,), out) if child is not None else _skip(text, i)
            i = _WS.match(text, i).end()
            c = text[i]
            if c == ",":
                i = _WS.match(text, i + 1).end()
            elif c == "}":
                return i + 1
            else:
                raise ValueError(f"expected ',' or '}}' at offset {i}")
    if c == "[":
        i = _WS.match(text, i + 1).end()
        if text[i] == "]":
            return i + 1
        index = 0
        while True:
            child = node.get(index)
            i = _walk(text, i, child, path + (index,), out) if child is not None else _skip(text, i)
            i = _WS.match(text, i).end()
            c = text[i]
            if c == ",":
                i = _WS.match(text, i + 1).end()
                index += 1
            elif c == "]":
                return i + 1
            else:
                raise ValueError(f"expected ',' or ']' at offset {i}")
    return _skip(text, i)


def _skip(text: str, i: int) -> int:
    if text[i] == '"':
        return scanstring(text, i + 1)[1]
    return _DECODER.raw_decode(text, i)[1]


def _record(text: str, i: int, path: tuple, out: dict) -> int:
    c = text[i]
    if c == '"':
        end = scanstring(text, i + 1)[1]
        out[path] = [(i, end)]
        return end
    if c != "[":
        raise ValueError(f"{_fmt(path)} is not a string or an array of strings")
    spans = []
    i = _WS.match(text, i + 1).end()
    if text[i] == "]":
        out[path] = spans
        return i + 1
    while True:
        if text[i] != '"':
            raise ValueError(f"{_fmt(path)} is not an array of strings")
        end = scanstring(text, i + 1)[1]
        spans.append((i, end))
        i = _WS.match(text, end).end()
        if text[i] == ",":
            i = _WS.match(text, i + 1).end()
        elif text[i] == "]":
            out[path] = spans
            return i + 1
        else:
            raise ValueError(f"expected ',' or ']' at offset {i}")


def raw_offsets(text: str, span: tuple, offsets) -> list:
    """Map offsets in the decoded string of the token at ``span`` to offsets in ``text``.

    An offset equal to the decoded length maps to the closing quote, so an exclusive end maps to
    an exclusive end. Offsets need not be sorted.
    """
    start, end = span
    body = start + 1
    if text.find("\\", body, end - 1) < 0:
        return [body + k for k in offsets]
    order = sorted(range(len(offsets)), key=offsets.__getitem__)
    result = [0] * len(offsets)
    raw = body  # raw position of the next decoded character
    dec = 0
    escapes = _ESCAPE.finditer(text, body, end - 1)
    nxt = next(escapes, None)
    for idx in order:
        want = offsets[idx]
        while True:
            # characters up to the next escape are one raw char each
            plain_end_dec = dec + ((nxt.start() if nxt else end - 1) - raw)
            if want <= plain_end_dec:
                result[idx] = raw + (want - dec)
                break
            if nxt is None:  # past the end: clamp to the closing quote
                result[idx] = end - 1
                break
            dec = plain_end_dec + 1
            raw = nxt.end()
            nxt = next(escapes, None)
    return result


def line_columns(text: str, offsets) -> list:
    """1-based (line, column) of each offset; columns count Unicode code points.

    Counts newlines between the sorted offsets with str.count, so many lookups in a large file
    cost one pass in C rather than an index of every line.
    """
    order = sorted(range(len(offsets)), key=offsets.__getitem__)
    result = [None] * len(offsets)
    line, last, line_start = 1, 0, 0
    for idx in order:
        off = offsets[idx]
        newlines = text.count("\n", last, off)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", last, off) + 1
        last = off
        result[idx] = (line, off - line_start + 1)
    return result
