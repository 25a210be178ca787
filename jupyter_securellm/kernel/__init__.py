"""The kernel side: `%llm` magics, `secrets.get`, the env guard and live output redaction.

Nothing is imported here on purpose: `%load_ext jupyter_securellm` imports only
`kernel.extension` and what it needs, so loading stays fast (no litellm, hvac or ipywidgets).
"""
