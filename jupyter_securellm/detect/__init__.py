"""Secret detection and redaction engine: pure Python, no Jupyter imports.

The kernel (live output), the server (prompts, answers, logs, saved notebooks) and the CLI (scan, scrub,
git filter) all use this one engine:

    >>> from jupyter_securellm.detect import Redactor
    >>> r = Redactor()
    >>> r.add_secret(value_from_vault)          # caught raw and in every common encoding
    >>> r.redact(text)                           # '... [REDACTED:openai-api-key] ...'

Matching runs Hyperscan as a prefilter when it is installed and a pure-Python prefilter otherwise; both
give identical findings.
"""
from .redact import DEFAULT_PLACEHOLDER, Redactor, StreamRedactor
from .rules import Rule, RuleError, default_rules, expand_template, fake_secret, load_rules
from .ruleset import RuleSet, default_ruleset
from .scanner import Finding, Scanner, fingerprint, hyperscan_available

__all__ = [
    "DEFAULT_PLACEHOLDER",
    "Finding",
    "Redactor",
    "Rule",
    "RuleError",
    "RuleSet",
    "Scanner",
    "StreamRedactor",
    "default_rules",
    "default_ruleset",
    "expand_template",
    "fake_secret",
    "fingerprint",
    "hyperscan_available",
    "load_rules",
]
