"""Credential rules: loaded from the data file `rules.toml`, compiled once, shared by every Scanner.

Rules are data, not code, so security teams can review them in one place and the test suite can run every
rule's own true- and false-positive examples.
"""
from __future__ import annotations

import json
import os
import random
import re
import string
import sys
import zlib
from dataclasses import InitVar, dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from .cache import cache_dir
from .lazy_regex import LazyRegex

#: Characters a rule's lookaround may inspect beyond its match; windows keep this much extra context.
LOOKAROUND_MARGIN = 16

#: Longest match any rule may produce; longer patterns would make windows (and stream hold-back) unbounded.
MAX_RULE_WIDTH = 30_000

CHARSETS = {
    "an": string.ascii_letters + string.digits,
    "b64u": string.ascii_letters + string.digits + "_-",
    "b64": string.ascii_letters + string.digits + "+/",
    "hex": "0123456789abcdef",
    "HEX": "0123456789ABCDEF",
    "up32": string.ascii_uppercase + "234567",
    "dig": string.digits,
    "alpha": string.ascii_letters,
    "low": string.ascii_lowercase,
    "lowan": string.ascii_lowercase + string.digits,
    "upan": string.ascii_uppercase + string.digits,
}

TEMPLATE_SLOT = LazyRegex(r"\{\{(\w+):(\d+)\}\}")


class RuleError(ValueError):
    """A rule in the data file is malformed (bad regex, unbounded pattern, missing keywords, ...)."""


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    pattern: str
    keywords: tuple[str, ...]
    entropy: float = 0.0
    generic: bool = False
    loose_shape: bool | None = None
    allowlist: tuple[str, ...] = ()
    min_classes: int = 0
    #: drop matches shaped like code (`filters.looks_like_code`), for short shapes that names can take
    reject_code: bool = False
    #: digit groups between dashes are account and user ids (`xoxb-<team>-<user>-...`): the mask check
    #: (a run of one character) looks at the rest only, since an id such as 511111111 is a number, not a mask
    numeric_ids: bool = False
    tp: tuple[str, ...] = ()
    fp: tuple[str, ...] = ()
    #: False for the bundled rules (checked by the test suite): their patterns compile on first use, so
    #: `%load_ext` does not pay for compiling every rule before the env guard has scanned anything.
    validate: InitVar[bool] = True

    def __post_init__(self, validate: bool):
        if not self.keywords:
            raise RuleError(f"rule {self.id!r}: needs at least one keyword")
        if self.loose_shape is None:
            object.__setattr__(self, "loose_shape", self.generic)
        if validate:
            _ = self.regex, self.max_width, self.allow_regexes

    # derived, computed on first use (a frozen dataclass's __dict__ can still hold cached properties)
    @cached_property
    def regex(self) -> re.Pattern:
        try:
            return re.compile(self.pattern, re.ASCII)
        except re.error as exc:
            raise RuleError(f"rule {self.id!r}: invalid pattern: {exc}") from None

    @cached_property
    def parsed(self):
        """The pattern's parse tree (`re`'s own parser): its width and, for streams, its alphabet and
        first characters are read from it without compiling anything."""
        from re import _parser  # type: ignore[attr-defined]

        try:
            return _parser.parse(self.pattern, re.ASCII)
        except re.error as exc:
            raise RuleError(f"rule {self.id!r}: invalid pattern: {exc}") from None

    @cached_property
    def max_width(self) -> int:
        width = self.parsed.getwidth()[1]
        if width > MAX_RULE_WIDTH:
            raise RuleError(f"rule {self.id!r}: pattern is unbounded or longer than {MAX_RULE_WIDTH} chars")
        return width

    @cached_property
    def allow_regexes(self) -> tuple[re.Pattern, ...]:
        return tuple(re.compile(a, re.ASCII) for a in self.allowlist)

    def secret_span(self, m: re.Match) -> tuple[int, int]:
        """The reported part of a match: the `secret` (or `secret2`, `secret3`) group, else the whole match."""
        gi = self.regex.groupindex
        for name in ("secret", "secret2", "secret3"):
            if name in gi and m.group(name) is not None:
                return m.span(name)
        return m.span()


def expand_template(template: str, rng: random.Random | None = None) -> str:
    """Fill `{{charset:N}}` slots with random characters: examples stay fake and are never committed as keys."""
    rng = rng or random.SystemRandom()

    def fill(m: re.Match) -> str:
        chars = CHARSETS[m.group(1)]
        return "".join(rng.choice(chars) for _ in range(int(m.group(2))))

    return TEMPLATE_SLOT.sub(fill, template)


def load_rules(text: str | None = None, *, validate: bool = True) -> tuple[Rule, ...]:
    """Parse rules from TOML text (default: the bundled `rules.toml`).

    With `validate` (the default), every pattern is compiled and checked now, so a bad rule fails here
    with a `RuleError` naming it.
    """
    data = _parse_toml(text) if text is not None else _parse_cached(_bundled_rules_text())
    rules = []
    seen = set()
    for raw in data.get("rule", []):
        rid = raw.get("id")
        if not rid or rid in seen:
            raise RuleError(f"rule ids must be present and unique (got {rid!r})")
        seen.add(rid)
        rules.append(
            Rule(
                id=rid,
                description=raw.get("description", ""),
                pattern=raw["pattern"],
                keywords=tuple(k.lower() for k in raw.get("keywords", ())),
                entropy=float(raw.get("entropy", 0.0)),
                generic=bool(raw.get("generic", False)),
                loose_shape=raw.get("loose_shape"),
                allowlist=tuple(raw.get("allowlist", ())),
                min_classes=int(raw.get("min_classes", 0)),
                reject_code=bool(raw.get("reject_code", False)),
                numeric_ids=bool(raw.get("numeric_ids", False)),
                tp=tuple(raw.get("tp", ())),
                fp=tuple(raw.get("fp", ())),
                validate=validate,
            )
        )
    return tuple(rules)


def _parse_toml(text: str) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def _bundled_rules_text() -> str:
    path = Path(__file__).with_name("rules.toml")
    try:
        return path.read_text(encoding="utf-8")
    except OSError:  # pragma: no cover - installed inside a zip: ask the import system
        from importlib import resources

        return resources.files(__package__).joinpath("rules.toml").read_text(encoding="utf-8")


def _parse_cached(text: str) -> dict:
    """`tomllib.loads(text)`, kept as JSON in the user's cache beside the Hyperscan database.

    tomllib is pure Python: importing it and parsing the bundled rules took ~10 ms of every
    `%load_ext`. The cache holds the whole source it was parsed from and is used only when that equals
    `text`, so an edited or upgraded rules file is never served stale rules.
    """
    path = cache_dir() / f"rules-toml-{zlib.crc32(text.encode('utf-8')):08x}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("source") == text:
            return cached["data"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass  # missing, unreadable or not ours: parse
    data = _parse_toml(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"source": text, "data": data}), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass  # read-only home, or a value JSON cannot hold: parse again next time
    return data


@lru_cache(maxsize=1)
def default_rules() -> tuple[Rule, ...]:
    """The bundled rules; their patterns compile on first use (the test suite validates them all)."""
    return load_rules(validate=False)


def fake_secret(rule_id: str, seed: int | None = None) -> str:
    """A freshly generated fake credential shaped like `rule_id`'s first true-positive example.

    Tests use this instead of committing key-shaped literals. Only the credential itself is returned,
    not the surrounding example context.
    """
    rules = {r.id: r for r in default_rules()}
    if rule_id not in rules:
        raise KeyError(f"unknown rule id {rule_id!r}; known: {', '.join(sorted(rules))}")
    rule = rules[rule_id]
    rng = random.Random(seed) if seed is not None else None
    for _ in range(50):
        example = expand_template(rule.tp[0], rng)
        for m in rule.regex.finditer(example):
            s, e = rule.secret_span(m)
            return example[s:e]
    raise RuntimeError(f"rule {rule_id!r}: its first example did not produce a match")  # pragma: no cover
