"""Notebook structure: checking a parsed notebook and listing every field that can hold text.

A field is a string, or a "multiline string" (an array of strings that nbformat joins: cell sources,
stream text, text MIME data). Scanning a multiline string joined matters: a PEM key spans lines.
Image and other binary MIME data are left out: they are base64 payloads, not text, and scrubbing
never touches them. XML and JSON subtypes (`image/svg+xml`) are text and are scanned like any other.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .jsonpos import KeyRef

#: MIME types whose data is base64 of binary content: never scanned, never rewritten.
BINARY_MIME_PREFIXES = ("image/", "audio/", "video/", "font/")
BINARY_MIME_TYPES = frozenset({"application/pdf", "application/octet-stream", "application/zip", "application/gzip"})

_CELL_TYPES = frozenset({"code", "markdown", "raw"})
_OUTPUT_TYPES = frozenset({"stream", "display_data", "execute_result", "error"})
#: Keys whose values are structural (enumerations, counters, ids) rather than content.
_CELL_SKIP = frozenset({"cell_type", "execution_count", "id"})
_OUTPUT_SKIP = frozenset({"output_type", "execution_count", "name"})
_PLAIN_KEY = re.compile(r"[A-Za-z_][\w/+-]*\Z")


class NotebookError(ValueError):
    """The input is not a notebook this tool can process; the message says why and where."""


@dataclass(slots=True)
class Field:
    path: tuple  # JSON path from the notebook root
    cell: int | None  # index into nb["cells"], None for notebook-level fields
    rel: tuple  # path relative to the cell (or to the notebook)
    value: object  # str, or list of str for a multiline string

    @property
    def is_key(self) -> bool:
        return isinstance(self.path[-1], KeyRef)

    @property
    def name(self) -> str:
        """The relative path as text, e.g. 'outputs[0].text' (built only for fields with findings)."""
        if self.is_key:
            return format_path(self.rel[:-1] + (self.rel[-1].key,)) + " (key)"
        return format_path(self.rel)

    @property
    def text(self) -> str:
        v = self.value
        if isinstance(v, str):
            return v
        try:
            return "".join(v)
        except TypeError:
            where = f"cells[{self.cell}].{self.name}" if self.cell is not None else self.name
            raise NotebookError(f"{where} is not a string or an array of strings") from None


def is_binary_mime(mime: str) -> bool:
    """True for base64 payloads. `image/svg+xml` (a plot whose title shows a config value) is XML text."""
    base = mime.split(";", 1)[0].strip().lower()
    if base.endswith(("+xml", "+json")):
        return False
    return base.startswith(BINARY_MIME_PREFIXES) or base in BINARY_MIME_TYPES


def format_path(parts) -> str:
    out = []
    for p in parts:
        if isinstance(p, int):
            out.append(f"[{p}]")
        elif _PLAIN_KEY.match(p):
            out.append(f".{p}" if out else p)
        else:
            out.append(f"[{p!r}]".replace("'", '"'))
    return "".join(out)


def _is_multiline(value) -> bool:
    """A string or an array (of strings: checked when joined, so large outputs are walked once)."""
    return isinstance(value, (str, list))


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or mime.endswith("+json")


def check_notebook(nb) -> None:
    """Raise NotebookError unless ``nb`` is an nbformat 4 notebook with the fields we walk."""
    if not isinstance(nb, dict):
        raise NotebookError("not a notebook: the top-level JSON value is not an object")
    major = nb.get("nbformat")
    if major is None:
        raise NotebookError("not a notebook: missing field 'nbformat'")
    if not isinstance(major, int) or isinstance(major, bool):
        raise NotebookError("not a notebook: 'nbformat' is not an integer")
    if major != 4:
        raise NotebookError(
            f"nbformat {major} is not supported (only nbformat 4); convert it first with "
            "`jupyter nbconvert --to notebook --nbformat 4 --inplace FILE`"
        )
    minor = nb.get("nbformat_minor")
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise NotebookError("missing or non-integer field 'nbformat_minor'")
    if not isinstance(nb.get("metadata"), dict):
        raise NotebookError("missing or non-object field 'metadata'")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise NotebookError("missing or non-array field 'cells'")
    for ci, cell in enumerate(cells):
        where = f"cells[{ci}]"
        if not isinstance(cell, dict):
            raise NotebookError(f"{where} is not an object")
        ctype = cell.get("cell_type")
        if ctype not in _CELL_TYPES:
            raise NotebookError(f"{where}: missing or unknown 'cell_type'")
        if "source" not in cell:
            raise NotebookError(f"{where}: missing field 'source'")
        if not _is_multiline(cell["source"]):
            raise NotebookError(f"{where}.source is not a string or an array of strings")
        if "metadata" in cell and not isinstance(cell["metadata"], dict):
            raise NotebookError(f"{where}.metadata is not an object")
        if ctype != "code":
            continue
        outputs = cell.get("outputs")
        if not isinstance(outputs, list):
            raise NotebookError(f"{where}: missing or non-array field 'outputs' in a code cell")
        for oi, out in enumerate(outputs):
            owhere = f"{where}.outputs[{oi}]"
            if not isinstance(out, dict):
                raise NotebookError(f"{owhere} is not an object")
            otype = out.get("output_type")
            if otype not in _OUTPUT_TYPES:
                raise NotebookError(f"{owhere}: missing or unknown 'output_type'")
            if otype == "stream":
                if not _is_multiline(out.get("text")):
                    raise NotebookError(f"{owhere}: missing or malformed 'text' in a stream output")
            elif otype == "error":
                tb = out.get("traceback")
                if not isinstance(tb, list):
                    raise NotebookError(f"{owhere}: missing or malformed 'traceback' in an error output")
            elif not isinstance(out.get("data"), dict):
                raise NotebookError(f"{owhere}: missing or non-object 'data' in a {otype} output")


def iter_fields(nb):
    """Every text-bearing field of a checked notebook, in document order of cells."""
    for ci, cell in enumerate(nb["cells"]):
        base = ("cells", ci)
        for key, value in cell.items():
            if key in _CELL_SKIP:
                continue
            if key == "source":
                yield Field(base + ("source",), ci, ("source",), value)
            elif key == "outputs" and isinstance(value, list):
                for oi, out in enumerate(value):
                    yield from _output_fields(out, base + ("outputs", oi), ci, ("outputs", oi))
            elif key == "attachments" and isinstance(value, dict):
                for name, bundle in value.items():
                    if isinstance(bundle, dict):
                        yield from _bundle_fields(bundle, base + ("attachments", name), ci, ("attachments", name))
                    else:
                        yield from _generic(bundle, base + ("attachments", name), ci, ("attachments", name))
            else:
                yield from _generic(value, base + (key,), ci, (key,))
    for key, value in nb.items():
        if key in ("cells", "nbformat", "nbformat_minor"):
            continue
        yield from _generic(value, (key,), None, (key,))


def _output_fields(out, path, ci, rel):
    if not isinstance(out, dict):
        return
    for key, value in out.items():
        if key in _OUTPUT_SKIP:
            continue
        if key == "text" and _is_multiline(value):
            yield Field(path + ("text",), ci, rel + ("text",), value)
        elif key == "data" and isinstance(value, dict):
            yield from _bundle_fields(value, path + ("data",), ci, rel + ("data",))
        else:
            yield from _generic(value, path + (key,), ci, rel + (key,))


def _bundle_fields(bundle, path, ci, rel):
    for mime, value in bundle.items():
        if is_binary_mime(mime):
            continue
        if _is_multiline(value) and not _is_json_mime(mime):
            yield Field(path + (mime,), ci, rel + (mime,), value)
        else:  # application/json and other +json types hold JSON values
            yield from _generic(value, path + (mime,), ci, rel + (mime,))


def _generic(value, path, ci, rel):
    if isinstance(value, str):
        if value:
            yield Field(path, ci, rel, value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k:  # keys are free text here (metadata, widget state, JSON outputs): a key can be a secret
                ref = KeyRef(k)
                yield Field(path + (ref,), ci, rel + (ref,), k)
            yield from _generic(v, path + (k,), ci, rel + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _generic(v, path + (i,), ci, rel + (i,))
