"""Stream partial matching (`detect/partial.py`): never releases the start of a match still in progress.

`partial_start` prunes with each rule's alphabet and first characters before it asks the `regex` module;
these tests check the pruning against the plain definition (try every start position) on every rule's
own examples, cut at every character, and check that streaming every example in any chunking gives the
whole-text redaction.
"""
import random
import re

import pytest

from jupyter_securellm.detect import Redactor, default_rules, expand_template
from jupyter_securellm.detect.partial import greedy_pattern, partial_start, pattern_alphabet, pattern_first_set

RULES = default_rules()
PREFIX = "log line 7: ok\n  value = "


def _examples(rule, seed):
    rng = random.Random(seed)
    return [expand_template(t, rng) for t in rule.tp]


def _in_progress_starts(det, buf, start):
    """Every start >= start (within the rule's width) where this rule's match is cut off by the end."""
    n = len(buf)
    out = []
    for s in range(max(start, n - det.width), n):
        # fullmatch: a match from s that reaches the end (partial: it could go on), whichever match
        # `regex` would prefer from s
        m = det.rx.fullmatch(buf, s, partial=True)
        if m is not None and (det.first is None or det.first.match(buf, s)):
            out.append(s)
    return out


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_partial_start_holds_every_match_in_progress(rule):
    ds = Redactor().scanner.partial_detectors()
    det = ds.detectors[RULES.index(rule)]
    checked = 0
    for example in _examples(rule, seed=len(rule.id)):
        doc = PREFIX + example + "\n"
        for cut in range(len(PREFIX), min(len(doc), len(PREFIX) + 400) + 1):
            buf = doc[:cut]
            starts = _in_progress_starts(det, buf, 8)
            hold = partial_start(ds, buf, 8)
            if starts:
                checked += 1
                assert hold <= starts[0], (rule.id, cut)
    assert checked, f"{rule.id}: no example was ever in progress (the test checked nothing)"


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_every_rule_streams_like_whole_text(rule):
    r = Redactor()
    rng = random.Random(rule.id)
    for example in _examples(rule, seed=7):
        doc = "start\n" + example + " tail, more words\n" + example
        expected = r.redact(doc)
        assert expected != doc, f"{rule.id}: its example is not found (the test would check nothing)"
        for _ in range(6):
            cuts = sorted(rng.sample(range(1, len(doc)), min(len(doc) - 1, rng.randrange(1, 30))))
            sr = r.stream()
            out, prev = [], 0
            for c in cuts + [len(doc)]:
                out.append(sr.feed(doc[prev:c]))
                prev = c
            out.append(sr.flush())
            assert "".join(out) == expected, (rule.id, cuts)


def test_alphabet_of_a_negated_class_excludes_what_it_excludes():
    a = pattern_alphabet(r'[^\s"\'<>]{3,20}@', re.ASCII)
    assert not {" ", "\t", "\n", '"', "'", "<", ">"} & a.ascii
    assert {"a", "Z", "0", ":", "@"} <= a.ascii and a.non_ascii
    b = pattern_alphabet(r"(?i)[^k]x", re.ASCII)
    assert "k" not in b.ascii and "K" not in b.ascii and "X" in b.ascii


def test_alphabet_includes_what_a_lookahead_reads():
    # a partial match may end inside a lookahead (`regex` reports it partial), so its characters count
    assert {"0", "9"} <= pattern_alphabet(r"ab(?=[0-9]{4})", re.ASCII).ascii
    assert "!" in pattern_alphabet(r"ab(?![!])", re.ASCII).ascii
    # a lookbehind reads only what the match has passed or what precedes it
    assert "#" not in pattern_alphabet(r"(?<!#)ab", re.ASCII).ascii


def test_first_characters():
    assert pattern_first_set(r"(?<![a-z])(?:ghp|gho)_[A-Za-z0-9]{36}", re.ASCII) == {"g"}
    assert pattern_first_set(r"(?i:sk)-[a-z]{4}", re.ASCII) == {"s", "S"}
    assert pattern_first_set(r"(?:x)?y", re.ASCII) == {"x", "y"}
    assert pattern_first_set(r"a?", re.ASCII) is None  # can match empty: could start anywhere


def test_lazy_quantifiers_are_read_greedy_for_partial_matching():
    # the `regex` module reports no partial match for a lazy quantifier followed by a lookbehind that
    # fails at the end; the detectors use the greedy form, which finds the same matches in progress
    lazy = r"(?i:telegram)[^\n]{0,40}?(?<![A-Za-z0-9_:])[0-9]{8,10}:[A-Za-z0-9_-]{35}"
    assert greedy_pattern(lazy, re.ASCII) == lazy.replace("{0,40}?", "{0,40}")
    assert greedy_pattern(r"a+?b??c{2,}?", re.ASCII) == r"a+b?c{2,}"
    for unchanged in (r"[*?]x", r"a\*?b", r"x{2}"):  # a ? inside a class, an escaped *, nothing lazy
        assert greedy_pattern(unchanged, re.ASCII) == unchanged
    buf = "start\ntelegram_bot_token = '"
    ds = Redactor().scanner.partial_detectors()
    assert partial_start(ds, buf, 0) <= buf.index("telegram")
