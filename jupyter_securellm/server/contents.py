"""The save hook: notebooks and text files saved through Jupyter never reach disk holding a secret.

`install_save_hook(extension)` registers a pre-save hook with the contents manager (next to any hook
the user configured, never replacing it). On every save it scans the model about to be written:

* ``redact`` (default): every finding is replaced by the placeholder before the file is written;
* ``block``: the save is refused with an HTTP 400 naming the rule and place (cell, field, line);
* ``warn``: the file is saved as is and a warning is logged (no value in it).

Only `tornado.web.HTTPError` stops a save (any other exception is logged by Jupyter and the file is
written anyway), so every failure of the scrubber is turned into an HTTPError: nothing unscanned is
ever written. The checkpoint is a copy of the file on disk, so it is clean too.

Large uploads arrive in chunks and Jupyter runs pre-save hooks for the first chunk only, so a file
uploaded in chunks is scanned whole on disk after its last chunk (a post-save hook) and redacted in
place, or removed in block mode. Until that last chunk the partial file sits on disk unscanned.
"""
from __future__ import annotations

import base64
import binascii
import contextvars
import os

from tornado.web import HTTPError

from ..notebook.allowlist import Baseline, BaselineError, find_default_baseline
from ..notebook.core import FieldHit, ScanCache, scrub_notebook_model, scrub_text
from ..notebook.engine import Engine
from ..notebook.fields import NotebookError
from ..notebook.files import decode_text, encode_text, looks_binary, write_atomic

MODES = ("redact", "block", "warn")
DEFAULT_TEXT_EXTENSIONS = (".py", ".md", ".env", ".json", ".txt", ".yaml", ".yml", ".cfg", ".ini", ".toml")
_MAX_LISTED = 10
#: What the pre-save hook did to the save in progress; the post-save hook hands it to the front end.
_OUTCOME: contextvars.ContextVar = contextvars.ContextVar("jupyter_securellm_save_outcome", default=None)


def install_save_hook(extension) -> "SaveHook":
    """Register the scrubbing pre-save hook on the server's contents manager; returns it."""
    redactor = getattr(extension, "redactor", None)
    if redactor is None:
        from ..detect import Redactor

        redactor = extension.redactor = Redactor()
    hook = SaveHook(extension, redactor)
    contents_manager = extension.serverapp.contents_manager
    contents_manager.register_pre_save_hook(hook)
    contents_manager.register_post_save_hook(hook.after_chunked_upload)
    contents_manager.register_post_save_hook(hook.attach_outcome)
    extension.log.info(
        "SecureLLM: save hook installed (mode %s; text files %s)", hook.mode, ", ".join(hook.text_extensions)
    )
    return hook


def _text_hits(text: str, hits) -> list:
    return [FieldHit(None, "", text.count("\n", 0, h.start) + 1, h.rule_id, h.fingerprint) for h in hits]


def _remove(os_path: str) -> None:
    try:
        os.remove(os_path)
    except OSError:
        pass


def _refusal(status: int, message: str) -> HTTPError:
    # Jupyter's API handlers send log_message as is, while tornado's access log %-formats it:
    # a literal % (from a path or a metadata key) must be doubled to survive the log.
    return HTTPError(status, message.replace("%", "%%"))


class SaveHook:
    """Callable registered with ``ContentsManager.register_pre_save_hook``."""

    __name__ = "jupyter_securellm_save_hook"  # Jupyter logs hooks by __name__

    def __init__(self, extension, redactor):
        self.extension = extension
        self.log = extension.log
        self.engine = Engine(redactor)
        self.cache = ScanCache()  # autosaves rewrite whole notebooks; only changed fields are rescanned
        self._scanned: set = set()  # file paths whose save the pre-save hook scanned (see after_chunked_upload)

    @property
    def mode(self) -> str:
        mode = getattr(self.extension, "save_hook_mode", "redact")
        return mode if mode in MODES else "redact"

    @property
    def text_extensions(self) -> tuple:
        exts = getattr(self.extension, "save_hook_text_extensions", None)
        return tuple(DEFAULT_TEXT_EXTENSIONS if exts is None else exts)

    def __call__(self, model=None, path=None, contents_manager=None, **kwargs):
        _OUTCOME.set(None)
        if not isinstance(model, dict) or model.get("content") is None:
            return
        if model.get("chunk") is not None:
            return  # a chunked upload: the whole file is scanned on disk after its last chunk
        kind = model.get("type")
        if kind == "notebook":
            handler = self._notebook
        elif kind == "file" and (model.get("format") == "text" or self._wants_text(path or "")):
            # every file saved as text is scanned whatever its name (.sql, .sh, no extension); the
            # extension list only adds base64 saves of text files
            handler = self._file
        else:
            return
        try:
            hits = handler(model, path, contents_manager)
        except HTTPError:
            raise
        except Exception as exc:  # noqa: BLE001 - refuse the save rather than write unscanned content
            self.log.error("SecureLLM: save hook failed on %s: %s", path, type(exc).__name__)
            detail = str(exc) if isinstance(exc, (NotebookError, BaselineError)) else type(exc).__name__
            raise _refusal(
                500, f"Save refused: the jupyter-securellm scrubber failed on {path} ({detail}); "
                "nothing was written, your content is still in the editor."
            ) from None
        if hits:
            self._report(hits, path)  # raises in block mode
        if kind == "file":
            self._scanned.add((path or "").strip("/"))

    def after_chunked_upload(self, model=None, os_path=None, contents_manager=None, **kwargs):
        """Post-save hook: Jupyter runs pre-save hooks for the first chunk of an upload only, so a file
        uploaded in chunks is scanned whole on disk once its last chunk is written.

        Ordinary saves were scanned before writing; they are recognised by the pre-save hook having
        seen them and skipped here. A refusal (block mode, or a failure) removes the uploaded file.
        """
        if not isinstance(model, dict) or model.get("type") != "file" or not os_path:
            return
        path = model.get("path") or ""
        if path in self._scanned:
            self._scanned.discard(path)
            return
        if not self._wants_text(path):
            return
        try:
            with open(os_path, "rb") as f:
                data = f.read()
            text = decode_text(data)
            new, hits = scrub_text(text, self.engine, self._baseline(path, contents_manager))
            found = _text_hits(text, hits)
            if found and self.mode == "redact":
                write_atomic(os_path, encode_text(new))
            if found:
                self._report(found, path)
        except HTTPError:
            _remove(os_path)
            raise
        except Exception as exc:  # noqa: BLE001 - the upload is on disk unscanned: take it away
            _remove(os_path)
            self.log.error("SecureLLM: scan of uploaded %s failed: %s", path, type(exc).__name__)
            raise _refusal(500, f"Upload refused: the jupyter-securellm scrubber failed on {path} "
                                f"({type(exc).__name__}); the file was removed.") from None

    def attach_outcome(self, model=None, **kwargs):
        """Post-save hook: put what the pre-save hook did into the model the contents API returns.

        The front end reads ``model["securellm"]`` from the save response to say "2 secrets redacted
        in cells 1, 4" (rule ids and places, never values). Each request runs in its own context, so
        concurrent saves never see each other's outcome.
        """
        outcome = _OUTCOME.get()
        _OUTCOME.set(None)
        if outcome is not None and isinstance(model, dict) and model.get("path", "").strip("/") == outcome.pop("_path"):
            model["securellm"] = outcome

    # -- kinds ---------------------------------------------------------------------------------------

    def _wants_text(self, path: str) -> bool:
        """Files saved as base64 (uploads) under these names are decoded and scanned as text too."""
        name = path.rsplit("/", 1)[-1]
        return any(name.endswith(ext) for ext in self.text_extensions)

    def _baseline(self, path, contents_manager):
        root = getattr(contents_manager, "root_dir", None)
        if not root:
            return None
        directory = os.path.dirname(os.path.join(root, (path or "").strip("/")))
        found = find_default_baseline(directory if os.path.isdir(directory) else root)
        return Baseline.load(found) if found else None

    def _notebook(self, model, path, contents_manager) -> list:
        baseline = self._baseline(path, contents_manager)
        return scrub_notebook_model(model["content"], self.engine, baseline, redact=self.mode == "redact",
                                    cache=self.cache)

    def _file(self, model, path, contents_manager) -> list:
        fmt = model.get("format") or "text"
        content = model["content"]
        if fmt == "base64":
            try:
                data = base64.b64decode(content.encode("ascii"), validate=False)
            except (binascii.Error, UnicodeEncodeError, ValueError):
                return []  # Jupyter refuses this content itself (400)
            if looks_binary(data):
                return []  # binary content under a text extension: nothing to read as text
            content = decode_text(data)  # a stray invalid byte must not hide the rest of the file
        elif fmt != "text" or not isinstance(content, str):
            return []
        baseline = self._baseline(path, contents_manager)
        new, hits = scrub_text(content, self.engine, baseline, cache=self.cache)
        if hits and self.mode == "redact":
            model["content"] = base64.b64encode(encode_text(new)).decode("ascii") if fmt == "base64" else new
        return _text_hits(content, hits)

    # -- outcome -------------------------------------------------------------------------------------

    def _report(self, hits, path):
        where = [f"{h.rule_id} at {h.where()}" for h in hits[:_MAX_LISTED]]
        if len(hits) > _MAX_LISTED:
            where.append(f"and {len(hits) - _MAX_LISTED} more")
        listing = "; ".join(where)
        mode = self.mode
        _OUTCOME.set({
            "_path": (path or "").strip("/"), "action": {"redact": "redacted", "warn": "warned"}.get(mode, "refused"),
            "findings": len(hits), "cells": sorted({h.cell for h in hits if h.cell is not None}),
            "rules": sorted({h.rule_id for h in hits}), "places": where,
        })
        if mode == "block":
            self.log.warning("SecureLLM: refused to save %s: %d secret(s): %s", path, len(hits), listing)
            raise _refusal(
                400, f"Save refused: {path} contains {len(hits)} secret(s): {listing}. "
                "Remove them (read keys with jupyter_securellm.secrets.get instead of pasting them) and save again."
            )
        if mode == "warn":
            self.log.warning("SecureLLM: saved %s with %d secret(s) (save_hook_mode=warn): %s", path, len(hits), listing)
        else:
            self.log.info("SecureLLM: redacted %d secret(s) in %s before saving: %s", len(hits), path, listing)
