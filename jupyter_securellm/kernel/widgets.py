"""ipywidgets for `%llm status` (a panel) and `%llm chat` (a chat box with streaming answers).

Widget state is saved into the notebook, so it must never hold a secret: only broker metadata and
chat text go in, everything passes the redactor first, and the comm hook redacts again on the wire.
ipywidgets is imported here only, on first use, so `%load_ext` stays light.
"""
from __future__ import annotations

import html

from .redaction import redact


def _widgets_available(magics) -> bool:
    if getattr(magics.shell, "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def status_rows(info: dict) -> list[tuple[str, str]]:
    vault = info.get("vault") or {}
    sealed = vault.get("sealed")
    budget = info.get("budget")
    rows = [
        ("Broker", str(info.get("broker", "?"))),
        ("Version", str(info.get("version", "?"))),
        ("User", str(info.get("user", "?"))),
        ("Vault", f"{vault.get('url', '?')}: " + ("reachable" if vault.get("reachable") else "UNREACHABLE")
         + ("" if sealed is None else (", sealed" if sealed else ", unsealed"))
         + (f", auth {vault['auth_method']}" if vault.get("auth_method") else "")),
        ("Models", ", ".join(info.get("models") or []) or "none"),
        ("Budget", "no limit configured" if budget is None else _budget_text(budget)),
        ("Alerts", "; ".join(_alert_text(a) for a in info.get("alerts") or []) or "none"),
    ]
    return [(k, redact(v)) for k, v in rows]


def _budget_text(budget) -> str:
    """One phrase per dimension: 'daily_tokens 1,200 of 5,000 used, 3,800 left (resets 2026-12-01T00:00:00Z)'."""
    if not isinstance(budget, dict):
        return str(budget)
    parts = []
    for dim, d in budget.items():
        if not isinstance(d, dict):
            parts.append(f"{dim}: {d}")
            continue
        fmt = (lambda v: f"${v:,.4g}") if "usd" in dim else (lambda v: f"{v:,}" if isinstance(v, int) else str(v))
        try:
            parts.append(f"{dim} {fmt(d.get('used'))} of {fmt(d.get('limit'))} used, {fmt(d.get('left'))} left"
                         + (f" (resets {d['resets_at']})" if d.get("resets_at") else ""))
        except (TypeError, ValueError):
            parts.append(f"{dim}: {d}")
    return "; ".join(parts)


def _alert_text(a) -> str:
    if not isinstance(a, dict):
        return str(a)
    return f"[{a.get('severity', '?')}] {a.get('kind', '?')} since {a.get('since', '?')}: {a.get('message', '')}"


def show_status(info: dict, magics):
    rows = status_rows(info)
    if not _widgets_available(magics):
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
        return None
    import ipywidgets as w
    from IPython.display import display

    table = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                    f"<td>{html.escape(v)}</td></tr>" for k, v in rows)
    panel = w.VBox([w.HTML("<b>SecureLLM status</b>"), w.HTML(f"<table>{table}</table>")])
    display(panel)
    return None


class ChatBox:
    """A text box, a send button and a transcript; answers stream into the transcript."""

    def __init__(self, magics, name: str | None = None):
        import ipywidgets as w

        self.magics = magics
        self.name = name or magics.default_chat
        self.transcript = w.HTML(value="")
        self.prompt = w.Textarea(placeholder="Ask the model… (Shift+Enter in the cell runs nothing here; press Send)",
                                 layout=w.Layout(width="100%"))
        self.send = w.Button(description="Send", button_style="primary")
        self.model = w.Dropdown(options=self._models(), description="Model")
        self.status = w.HTML(value="")
        self.send.on_click(lambda _b: self.ask(self.prompt.value))
        self.widget = w.VBox([w.HTML(f"<b>Chat: {html.escape(self.name)}</b>"), self.transcript,
                              self.prompt, w.HBox([self.model, self.send]), self.status])
        self._render()

    def _models(self):
        try:
            return self.magics.backend.models()
        except Exception:
            return [self.magics.default_model] if self.magics.default_model else []

    def _render(self, pending: str | None = None):
        parts = []
        for msg in self.magics.chats.get(self.name, []):
            who = "You" if msg["role"] == "user" else "Model"
            parts.append(f"<p><b>{who}:</b> {html.escape(redact(msg['content']))}</p>")
        if pending is not None:
            parts.append(f"<p><b>Model:</b> {html.escape(redact(pending))}▌</p>")
        self.transcript.value = "".join(parts)

    def ask(self, text: str):
        from .client import SecureLLMError, delta_text

        if not text.strip():
            return
        self.status.value = ""
        try:
            prompt = self.magics.build_prompt(text, use_vars=False)
            model = self.model.value or self.magics._resolve_model(None)
            history = self.magics.chats.get(self.name, [])[-self.magics.max_history:]
            body = {"model": model, "messages": history + [{"role": "user", "content": prompt}]}
            answer = ""
            stream = self.magics.backend.stream(body)
            try:
                for chunk in stream:
                    answer += delta_text(chunk)
                    self._render(answer)
            finally:
                stream.close()
        except SecureLLMError as exc:
            self.status.value = f"<span style='color:#b00'>{html.escape(redact(exc.message))}</span>"
            return
        self.magics.chats.setdefault(self.name, []).extend(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}])
        self.prompt.value = ""
        self._render()


def show_chat(magics, name: str | None = None):
    if not _widgets_available(magics):
        print("%llm chat needs a Jupyter kernel with ipywidgets; use %%llm --chat NAME in a terminal.")
        return None
    from IPython.display import display

    box = ChatBox(magics, name)
    display(box.widget)
    return None
