"""Every rule's own examples: true positives found and fully redacted, false positives silent (tier 1)."""
import random
import re
import zlib

import pytest

from jupyter_securellm.detect import Redactor, Scanner, default_rules, expand_template, fake_secret, load_rules
from jupyter_securellm.detect.rules import MAX_RULE_WIDTH, TEMPLATE_SLOT, RuleError

RULES = default_rules()
SEEDS = range(25)
REQUIRED = [
    "openai-api-key", "anthropic-api-key", "google-api-key", "azure-openai-key", "aws-access-key-id",
    "aws-secret-access-key", "cohere-api-key", "groq-api-key", "mistral-api-key", "xai-api-key",
    "perplexity-api-key", "deepseek-api-key", "openrouter-api-key", "replicate-api-token", "together-api-key",
    "huggingface-token", "github-token", "github-fine-grained-pat", "gitlab-token", "slack-token",
    "slack-webhook", "stripe-secret-key", "sendgrid-api-key", "npm-token", "pypi-token", "databricks-token",
    "telegram-bot-token", "vault-token", "jwt", "private-key", "url-password", "generic-api-key",
    "generic-password", "generic-password-unquoted", "langsmith-api-key", "pinecone-api-key", "wandb-api-key",
    "fireworks-api-key", "voyage-api-key", "aws-session-token", "gcp-service-account-key",
    "azure-storage-connection-string",
]


def test_bundled_rules_validate_like_user_rules():
    # default_rules() defers compiling to first use (load time); validated, they are the same rules
    assert load_rules(validate=True) == RULES


def test_required_rules_present():
    ids = {r.id for r in RULES}
    assert not set(REQUIRED) - ids


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_is_well_formed(rule):
    assert rule.tp and rule.fp, "each rule carries true- and false-positive examples"
    assert 0 < rule.max_width <= MAX_RULE_WIDTH
    for tp in rule.tp:
        for seed in range(5):
            example = expand_template(tp, random.Random(seed))
            for m in rule.regex.finditer(example):
                assert any(k in m.group(0).lower() for k in rule.keywords), "every match holds a keyword"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_true_positives_found_and_redacted(rule, backend):
    redactor = Redactor(backend=backend)
    for tp in rule.tp:
        for seed in SEEDS:
            rng = random.Random(seed * 7919 + zlib.crc32(rule.id.encode()))
            example = expand_template(tp, rng)
            findings = redactor.scanner.scan(example)
            assert any(f.rule_id == rule.id for f in findings), (rule.id, tp, seed)
            out = redactor.redact(example)
            assert f"[REDACTED:{rule.id}]" in out
            # no fragment of any random slot survives
            for frag in _random_parts(tp, example):
                assert frag not in out, (rule.id, seed)


def _random_parts(template, example):
    """The random characters an example was filled with (slots of 6+ chars)."""
    rx = "^" + re.sub(r"\\\{\\\{(\w+):(\d+)\\\}\\\}", lambda m: f"(.{{{m.group(2)}}})", re.escape(template)) + "$"
    m = re.match(rx, example, re.S)
    assert m, "template and example line up"
    return [g for g in m.groups() if len(g) >= 6]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_false_positives_silent(rule, scanner):
    for fp in rule.fp:
        assert scanner.scan(expand_template(fp, random.Random(1))) == [], (rule.id, fp)


def test_fake_secret_matches_its_rule():
    s = Scanner()
    for rid in ("openai-api-key", "github-token", "aws-access-key-id", "anthropic-api-key"):
        key = fake_secret(rid)
        assert [f.rule_id for f in s.scan(f"k = {key} ")] == [rid]
        assert fake_secret(rid) != key, "fresh each call"
    assert fake_secret("github-token", seed=3) == fake_secret("github-token", seed=3)
    with pytest.raises(KeyError, match="unknown rule id"):
        fake_secret("no-such-rule")


def test_no_key_shaped_literal_is_committed():
    # the data file holds templates, never a filled-in key: scanning its raw text finds no provider key
    from importlib import resources

    raw = resources.files("jupyter_securellm.detect").joinpath("rules.toml").read_text()
    structured = [f for f in Scanner().scan(raw) if f.rule_id not in ("generic-api-key", "generic-password", "url-password", "http-bearer-token")]
    assert structured == []
    assert TEMPLATE_SLOT.search(raw)


@pytest.mark.parametrize(
    "toml, message",
    [
        ('[[rule]]\nid = "x"\npattern = "a+"\nkeywords = ["a"]', "unbounded"),
        ('[[rule]]\nid = "x"\npattern = "a{3}"\nkeywords = []', "keyword"),
        ('[[rule]]\nid = "x"\npattern = "(a"\nkeywords = ["a"]', "invalid pattern"),
        ('[[rule]]\nid = "x"\npattern = "a"\nkeywords = ["a"]\n[[rule]]\nid = "x"\npattern = "b"\nkeywords = ["b"]', "unique"),
    ],
)
def test_malformed_rules_fail_loudly(toml, message):
    with pytest.raises(RuleError, match=message):
        load_rules(toml)


def test_custom_rules_work_on_both_backends():
    rules = load_rules('[[rule]]\nid = "acme-token"\npattern = "(?<![a-z])acme_[a-f0-9]{24}"\nkeywords = ["acme_"]\ntp=["x"]\nfp=["y"]')
    rng = random.Random(3)
    text = "token acme_" + "".join(rng.choice("0123456789abcdef") for _ in range(24)) + " end"
    for be in ("hyperscan", "python"):
        assert [f.rule_id for f in Scanner(rules, backend=be).scan(text)] == ["acme-token"]
