"""`%%llm` / `%llm`: call an LLM through the broker, stream the answer into one display.

Prompts are never formatted with the user namespace (jupyter-ai's `format_map(user_ns)` lets
`{os.environ[...]}` leak into a prompt). Interpolation is opt-in (`--vars`), plain names only,
and every value is scanned: a secret never reaches a prompt.
"""
from __future__ import annotations

import json
import re
import sys
import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Dict, Enum, Float, Int, List, Unicode, observe

from .client import SecureLLMError

FORMATS = ("markdown", "code", "text", "json", "html")
SUBCOMMANDS = ("models", "status", "reset", "help", "chat", "error")
#: How much of a cell and of a traceback `%llm error` sends (the end matters most in a traceback).
ERROR_SOURCE_CHARS = 4000
ERROR_TRACEBACK_CHARS = 8000
_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FENCE = re.compile(r"^\s*```[\w+-]*\s*\n(.*?)\n?```\s*$", re.S)


@magics_class
class SecureLLMMagics(Magics):
    """LLM magics whose provider keys stay in Vault, behind the Jupyter server's broker."""

    default_model = Unicode("", help="Model alias used when none is given (empty: the first one the broker offers).").tag(config=True)
    default_format = Enum(FORMATS, default_value="markdown", help="How answers render by default.").tag(config=True)
    default_chat = Unicode("default", help="Conversation name used when --chat is not given.").tag(config=True)
    temperature = Float(None, allow_none=True, help="Default sampling temperature (None: the provider's).").tag(config=True)
    max_tokens = Int(None, allow_none=True, help="Default answer length limit (None: the provider's).").tag(config=True)
    max_history = Int(20, help="How many earlier messages of a chat are sent with each prompt.").tag(config=True)
    timeout = Float(120.0, help="Seconds to wait for the broker before giving up.").tag(config=True)
    stream_interval = Float(0.05, help="Minimum seconds between two updates of a streaming answer.").tag(config=True)
    mode = Enum(("auto", "broker", "direct"), default_value="auto",
                help="broker: through the Jupyter server (key never in the kernel). direct: read Vault from the kernel "
                     "(weaker: see docs/kernel.md). auto: broker when the server gave us one, else direct if configured.").tag(config=True)
    env_guard = Enum(("block", "warn"), default_value="block",
                     help="What to do when code puts a secret into os.environ.").tag(config=True)
    source_guard = Enum(("warn", "block", "off"), default_value="warn",
                        help="What to do when a cell's source contains a secret literal.").tag(config=True)
    env_deny_patterns = List(Unicode(), default_value=None, allow_none=True,
                             help="Globs of environment variable names treated as secrets (None: built-in list).").tag(config=True)
    # direct mode (no server)
    vault_url = Unicode("", help="Direct mode: Vault/OpenBao address (default: $VAULT_ADDR).").tag(config=True)
    vault_token_path = Unicode("~/.vault-token", help="Direct mode: file holding the Vault token.").tag(config=True)
    vault_kv_mount = Unicode("secret", help="Direct mode: KV v2 mount.").tag(config=True)
    vault_namespace = Unicode("", help="Direct mode: Vault namespace (Enterprise).").tag(config=True)
    models = Dict(help="Direct mode: alias -> {model, secret_path, secret_key, api_base}, as c.SecureLLM.models.").tag(config=True)

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self.chats: dict[str, list[dict]] = {}
        self._backend = None
        self._models_cache: list[str] | None = None
        self.last_error: tuple[str, BaseException] | None = None  # (cell source, exception)

    def remember_error(self, result) -> None:
        """post_run_cell: keep the last failing cell and its exception, for `%llm error`."""
        exc = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if exc is not None:
            info = getattr(result, "info", None)
            self.last_error = (getattr(info, "raw_cell", "") or "", exc)

    # ------------------------------------------------------------ backend
    @observe("mode", "timeout", "vault_url", "vault_token_path", "vault_kv_mount", "vault_namespace", "models")
    def _backend_config_changed(self, _change):
        self._backend = None  # rebuilt on next use with the new settings
        self._models_cache = None

    @property
    def backend(self):
        if self._backend is None:
            from .backend import make_backend

            self._backend = make_backend(self)
        return self._backend

    def _resolve_model(self, requested: str | None) -> str:
        if requested:
            return requested
        if self.default_model:
            return self.default_model
        if self._models_cache is None:
            self._models_cache = self.backend.models()
        if not self._models_cache:
            raise SecureLLMError("policy_denied", "No model is available to you; ask your admin (see %llm status).")
        return self._models_cache[0]

    # ------------------------------------------------------------ the magic
    @magic_arguments()
    @argument("words", nargs="*", help="Line magic: MODEL PROMPT... or a subcommand "
                                       "(models | status | reset [NAME] | help | chat | error [-m MODEL]). "
                                       "Cell magic: optional MODEL.")
    @argument("-m", "--model", default=None, help="Model alias (see %%llm models).")
    @argument("-f", "--format", default=None, choices=FORMATS, help="How to render the answer.")
    @argument("--system", default=None, metavar="TEXT", help="A system prompt for this call.")
    @argument("--temperature", type=float, default=None, metavar="T", help="Sampling temperature.")
    @argument("--max-tokens", type=int, default=None, metavar="N", help="Maximum answer length in tokens.")
    @argument("-o", "--output", default=None, metavar="VAR", help="Also store the answer text in this variable.")
    @argument("--chat", default=None, metavar="NAME", help="Conversation to continue (history is kept per name).")
    @argument("--no-history", action="store_true", help="Send this prompt alone and do not record it.")
    @argument("--vars", action="store_true", help="Replace {name} with the value of variable `name` "
                                                  "(plain names only; values holding a secret are refused).")
    @argument("--insert", action="store_true", help="With -f code: put the answer in a new code cell below "
                                                    "(never run).")
    @no_var_expand
    @line_cell_magic
    def llm(self, line, cell=None):
        """Ask an LLM. Keys stay in Vault; the Jupyter server brokers the call.

        Examples::

            %%llm -m gpt4 -f code
            Write a function that parses ISO dates.

            %%llm -f code --insert
            Plot the histogram of df.age.        (the code lands in a new cell below, not run)

            %llm gpt4 What is a p-value?
            %llm error [-m MODEL]                 (explain the last error of this kernel)
            %llm models | status | reset [NAME] | help | chat
            %config SecureLLMMagics.default_model = "gpt4"
        """
        if cell is None and line.strip() and not line.lstrip().startswith("-"):
            # `%llm MODEL free text with 'quotes'`: no shell-style parsing of the prompt.
            args = parse_argstring(self.llm, "")
            args.words = line.split(None, 1)
            if args.words and args.words[0] in SUBCOMMANDS:
                args.words = line.split()
        else:
            args = parse_argstring(self.llm, line)
        if args.chat and args.no_history:
            raise UsageError("Use either --chat NAME or --no-history, not both.")
        if args.insert and (args.format or self.default_format) != "code":
            raise UsageError("--insert puts code in a new cell: use it with -f code.")
        words = list(args.words)
        if cell is None:
            if words and words[0] == "error":  # `%llm -m MODEL error` works as well as `%llm error -m MODEL`
                return self._explain_error(words[1:], model=args.model, fmt=args.format)
            if words and words[0] in SUBCOMMANDS:
                return self._subcommand(words[0], words[1:])
            if not words:
                raise UsageError("Usage: %llm MODEL PROMPT, or %%llm as a cell magic; %llm help for more.")
            if args.model is None and len(words) >= 2:
                args.model = words.pop(0)
            prompt = " ".join(words)
        else:
            if words:
                if args.model is not None or len(words) > 1:
                    raise UsageError("%%llm takes at most one positional word, the model alias; the prompt is the cell body.")
                args.model = words[0]
            prompt = cell.rstrip()
        if not prompt.strip():
            raise UsageError("The prompt is empty.")
        return self._ask(args, prompt)

    # ------------------------------------------------------------ subcommands
    def _subcommand(self, name, rest):
        if name == "help":
            print(self.llm.__doc__.strip())  # magic_arguments put the full option list in it
            return None
        if name == "reset":
            if rest:
                for chat in rest:
                    self.chats.pop(chat, None)
                print(f"Cleared chat history: {', '.join(rest)}.")
            else:
                self.chats.clear()
                print("Cleared all chat histories.")
            return None
        if name == "models":
            models = self.backend.models()
            self._models_cache = models
            if not models:
                print("No model is available to you (check with your admin).")
            default = self.default_model or (models[0] if models else "")
            for alias in models:
                print(f"{alias}{'  (default)' if alias == default else ''}")
            return None
        if name == "status":
            info = self.backend.status()
            from .widgets import show_status

            show_status(info, self)
            return None
        if name == "chat":
            from .widgets import show_chat

            return show_chat(self, rest[0] if rest else None)
        if name == "error":
            return self._explain_error(rest)
        raise UsageError(f"Unknown subcommand {name!r}.")  # pragma: no cover

    def _explain_error(self, rest, model=None, fmt=None):
        """`%llm error [-m MODEL] [-f FORMAT]`: the last traceback and its cell, redacted, to the model."""
        import argparse

        parser = argparse.ArgumentParser(prog="%llm error", add_help=False, exit_on_error=False)
        parser.add_argument("-m", "--model", default=model)
        parser.add_argument("-f", "--format", default=fmt, choices=FORMATS)
        try:
            opts = parser.parse_args(rest)
        except (argparse.ArgumentError, SystemExit) as exc:
            raise UsageError(f"Usage: %llm error [-m MODEL] [-f FORMAT] ({exc})") from None
        source, exc = self._last_error()
        prompt = error_prompt(source, exc)
        args = parse_argstring(self.llm, "--no-history")
        args.model, args.format = opts.model, opts.format or "markdown"
        return self._ask(args, prompt)

    def _last_error(self) -> tuple[str, BaseException]:
        if self.last_error is not None:
            return self.last_error
        exc = getattr(sys, "last_value", None)  # an error from before %load_ext
        if exc is None:
            raise UsageError("No error to explain yet: %llm error explains the last traceback of this kernel.")
        return "", exc

    # ------------------------------------------------------------ asking
    def build_prompt(self, prompt: str, use_vars: bool) -> str:
        from .redaction import get_redactor

        scanner = get_redactor().scanner
        if use_vars:
            ns = self.shell.user_ns

            def sub(match):
                name = match.group(1)
                if name not in ns:
                    raise UsageError(f"--vars: the variable {name!r} is not defined.")
                value = ns[name]
                from .secrets import Secret

                if isinstance(value, Secret):
                    raise SecureLLMError("dlp_blocked", f"--vars: {name!r} holds a secret from secrets.get(); it was not sent.")
                text = value if isinstance(value, str) else repr(value)
                found = scanner.scan(text)
                if found:
                    raise SecureLLMError("dlp_blocked", f"--vars: the value of {name!r} looks like a secret "
                                         f"({found[0].rule_id}); nothing was sent.")
                return text

            prompt = _NAME.sub(sub, prompt)
        found = scanner.scan(prompt)
        if found:
            rules = ", ".join(sorted({f.rule_id for f in found}))
            raise SecureLLMError("dlp_blocked", f"The prompt contains what looks like a secret ({rules}); "
                                 "nothing was sent. Remove it and retry.")
        return prompt

    def _messages(self, args, prompt):
        messages = []
        if args.system:
            messages.append({"role": "system", "content": args.system})
        chat = None
        if not args.no_history:
            chat = args.chat or self.default_chat
            history = self.chats.get(chat, [])
            if self.max_history > 0:
                messages.extend(history[-self.max_history:])
        messages.append({"role": "user", "content": prompt})
        return messages, chat

    def _ask(self, args, prompt):
        prompt = self.build_prompt(prompt, args.vars)
        model = self._resolve_model(args.model)
        fmt = args.format or self.default_format
        messages, chat = self._messages(args, prompt)
        body = {"model": model, "messages": messages}
        temperature = args.temperature if args.temperature is not None else self.temperature
        max_tokens = args.max_tokens if args.max_tokens is not None else self.max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens

        text, stopped = self._stream(body, fmt)
        if getattr(args, "insert", False):
            if stopped:
                print("Stopped: nothing was inserted.")
            else:
                # a new cell below, never run: the user reads it first (ipykernel sends it as a payload)
                self.shell.set_next_input(_strip_fence(text).strip() + "\n", replace=False)
        if chat is not None:
            self.chats.setdefault(chat, []).extend(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": text}])
        if args.output:
            self.shell.user_ns[args.output] = text
        return None

    def _stream(self, body, fmt):
        """Stream the answer into one display updated in place; Ctrl-C stops it cleanly."""
        from .client import delta_text

        rich = getattr(self.shell, "kernel", None) is not None
        handle = None  # the display appears with the first token, so a refused call leaves no empty output
        parts: list[str] = []
        stopped = False
        stream = self.backend.stream(body)
        last = 0.0
        try:
            for chunk in stream:
                piece = delta_text(chunk)
                if not piece:
                    continue
                parts.append(piece)
                if rich:
                    now = time.monotonic()
                    if handle is None:
                        from IPython.display import display

                        handle = display(render(fmt, piece, streaming=True), raw=True, display_id=True)
                        last = now
                    elif now - last >= self.stream_interval:
                        handle.update(render(fmt, "".join(parts), streaming=True), raw=True)
                        last = now
                else:
                    sys.stdout.write(piece)
        except KeyboardInterrupt:
            stopped = True
        finally:
            stream.close()
        text = "".join(parts)
        note = "\n\n*[stopped]*" if stopped else ""
        if rich:
            final = render(fmt, text, note=note)
            if handle is None:
                from IPython.display import display

                display(final, raw=True)
            else:
                handle.update(final, raw=True)
        else:
            sys.stdout.write(("\n[stopped]" if stopped else "") + "\n")
        return text, stopped


def _user_frames(exc: BaseException) -> list[str]:
    """The traceback as Python prints it, without IPython's own frames above the cell."""
    import traceback

    te = traceback.TracebackException.from_exception(exc)
    frames = list(te.stack)
    while frames and "/IPython/core/" in (frames[0].filename or ""):
        frames.pop(0)
    te.stack = traceback.StackSummary.from_list(frames)
    return list(te.format())


def error_prompt(source: str, exc: BaseException) -> str:
    """What `%llm error` sends: the cell and the traceback, redacted (placeholders for every secret the
    kernel's redactor knows, built-in rules included) before the usual DLP check and the broker's."""
    from .redaction import redact

    tb = "".join(_user_frames(exc))[-ERROR_TRACEBACK_CHARS:]
    parts = ["Explain this Python error from a Jupyter notebook and how to fix it. Be brief."]
    if source.strip():
        parts.append("The cell:\n```python\n" + source[:ERROR_SOURCE_CHARS].rstrip() + "\n```")
    parts.append("The traceback:\n```\n" + tb.rstrip() + "\n```")
    return redact("\n\n".join(parts))


def _strip_fence(text: str) -> str:
    m = _FENCE.match(text)
    return m.group(1) if m else text


def render(fmt: str, text: str, streaming: bool = False, note: str = "") -> dict:
    """The MIME bundle for an answer in a format (every bundle also has text/plain)."""
    if fmt == "markdown":
        return {"text/markdown": text + note, "text/plain": text}
    if fmt == "code":
        code = _strip_fence(text) if not streaming else text.replace("```", "")
        return {"text/markdown": f"```python\n{code.strip()}\n```" + note, "text/plain": code}
    plain_note = " [stopped]" if note else ""
    if fmt == "html":
        return {"text/html": text + (f"<p><i>{plain_note.strip()}</i></p>" if note else ""), "text/plain": text + plain_note}
    if fmt == "json" and not streaming and not note:
        try:
            obj = json.loads(_strip_fence(text))
        except ValueError:
            return {"text/plain": text}
        return {"application/json": obj, "text/plain": json.dumps(obj, indent=2)}
    return {"text/plain": text + plain_note}
