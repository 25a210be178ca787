"""A value a rule found is redacted in every later copy, in whole text and in any chunking of a stream.

Keyword-gated rules find a value only with its context before it (`telegram ... <token>`,
`MY_SERVICE_API_KEY=<value>`); the same value printed again without that context is caught because the
text or stream remembers it (`detect/remembered.py`). Every secret here is generated at run time.
"""
import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_securellm.detect import Redactor, Scanner, expand_template, fake_secret
from jupyter_securellm.detect import remembered
from jupyter_securellm.detect.remembered import RememberedValues, rememberable


def _telegram_token(seed: int) -> str:
    """A bot token whose secret part does not start `AA`: the rule takes it only after "telegram"."""
    return expand_template("{{dig:9}}:B{{an:34}}", random.Random(seed))


def _streamed(r: Redactor, text: str, size: int) -> str:
    sr = r.stream()
    out = [sr.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(out) + sr.flush()


def _streamed_at(r: Redactor, text: str, cuts) -> str:
    sr = r.stream()
    out, prev = [], 0
    for c in sorted(set(cuts)) + [len(text)]:
        out.append(sr.feed(text[prev:c]))
        prev = c
    return "".join(out) + sr.flush()


def _assert_every_chunk_size(r: Redactor, doc: str, expected: str) -> None:
    for size in range(1, len(doc) + 1):
        assert _streamed(r, doc, size) == expected, size


TOKEN = _telegram_token(11)
TELEGRAM_DOC = f"notify: telegram bot token {TOKEN} (copy: {TOKEN})\nretrying with {TOKEN} now\n"


def test_the_rule_alone_finds_only_the_first_copy():
    # what the memory fixes: without it the second and third copies would leak
    assert [TELEGRAM_DOC[f.start : f.end] for f in Scanner().scan(TELEGRAM_DOC)] == [TOKEN]


def test_telegram_token_redacted_in_every_later_copy_whole_and_streamed():
    r = Redactor()
    expected = r.redact(TELEGRAM_DOC)
    assert TOKEN not in expected and TOKEN[10:30] not in expected
    assert expected.count("[REDACTED:telegram-bot-token]") == 3
    assert expected.startswith("notify: telegram bot token [REDACTED")
    _assert_every_chunk_size(r, TELEGRAM_DOC, expected)
    text, findings = r.redact_with_findings(TELEGRAM_DOC)
    assert text == expected and len(findings) == 3
    assert len({f.fingerprint for f in findings}) == 1


@pytest.mark.parametrize("rule_id, named", [
    ("generic-api-key", "MY_SERVICE_API_KEY={v}"),
    ("aws-secret-access-key", "aws_secret_access_key = {v}"),
])
def test_other_keyword_gated_rules_redact_later_copies(rule_id, named):
    v = fake_secret(rule_id, seed=21)
    doc = f"{named.format(v=v)}\nclient = Client({v!r})  # and {v}\nlast line {v}\n"
    # the rule needs its name before the value: it finds only the first copy
    assert len([f for f in Scanner().scan(doc) if f.rule_id == rule_id]) == 1
    r = Redactor()
    expected = r.redact(doc)
    assert v not in expected and expected.count(f"[REDACTED:{rule_id}]") == 4
    _assert_every_chunk_size(r, doc, expected)


def test_a_copy_before_the_first_finding_stays():
    # a stream has emitted it before the value is found; whole text gives the same answer
    doc = f"bare {TOKEN} first\ntelegram {TOKEN} then\n"
    r = Redactor()
    expected = r.redact(doc)
    assert expected == f"bare {TOKEN} first\ntelegram [REDACTED:telegram-bot-token] then\n"
    _assert_every_chunk_size(r, doc, expected)


def test_a_short_value_is_not_remembered():
    v = fake_secret("generic-password-unquoted", seed=3)  # 14 characters: found, but too short to remember
    assert len(v) < remembered.MIN_LENGTH
    doc = f"DB_PASSWORD={v}\nthe word {v} again\n"
    r = Redactor()
    expected = r.redact(doc)
    assert expected == f"DB_PASSWORD=[REDACTED:generic-password-unquoted]\nthe word {v} again\n"
    _assert_every_chunk_size(r, doc, expected)


def test_what_is_rememberable():
    assert rememberable(TOKEN) and rememberable(fake_secret("generic-api-key", seed=1))
    rng = random.Random(5)
    short = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(remembered.MIN_LENGTH - 1))
    assert not rememberable(short)
    assert not rememberable("aaaaaaaabbbbbbbbccccdddd")  # 24 characters, 1.9 bits each: text repeats such runs
    assert not rememberable("ab" * 12)
    assert not rememberable(TOKEN * 40)  # longer than MAX_LENGTH
    memory = RememberedValues()
    assert not memory.add("aaaaaaaabbbbbbbbccccdddd", "generic-api-key", "fp", 0) and len(memory) == 0


def test_memory_is_bounded_and_whole_text_matches_streams():
    # more distinct values than a stream remembers: the first MAX_VALUES are, the rest are not
    n = remembered.MAX_VALUES + 3
    tokens = [_telegram_token(1000 + i) for i in range(n)]
    doc = "".join(f"telegram {t}\n" for t in tokens) + "".join(f"copy {t}\n" for t in tokens)
    r = Redactor()
    expected = r.redact(doc)
    for i, t in enumerate(tokens):
        assert (t in expected) == (i >= remembered.MAX_VALUES), i
    rng = random.Random(9)
    for _ in range(3):
        assert _streamed_at(r, doc, [rng.randrange(len(doc)) for _ in range(400)]) == expected
    memory = RememberedValues()
    for i, t in enumerate(tokens):
        assert memory.add(t, "telegram-bot-token", str(i), 0) == (i < remembered.MAX_VALUES)
    assert len(memory) == remembered.MAX_VALUES


def test_streams_remember_separately():
    r = Redactor()
    a, b = r.stream(), r.stream()
    assert a.feed(f"telegram {TOKEN}\n") + a.flush() == "telegram [REDACTED:telegram-bot-token]\n"
    assert b.feed(f"bare {TOKEN}\n") + b.flush() == f"bare {TOKEN}\n"  # b never found it
    assert a.feed(f"bare {TOKEN}\n") + a.flush() == "bare [REDACTED:telegram-bot-token]\n"


def test_the_start_of_a_remembered_value_is_held_back():
    r = Redactor()
    sr = r.stream()
    tail = " and then some more text\n"  # a match near the end waits: more input could still extend it
    assert sr.feed(f"telegram {TOKEN}{tail}") == f"telegram [REDACTED:telegram-bot-token]{tail}"
    assert sr.pending == 0
    # "value " goes out; the first 12 characters of the token could be its copy: held
    assert sr.feed("value " + TOKEN[:12]) == "value "
    assert sr.pending == 12
    assert sr.feed(TOKEN[12:] + tail) == "[REDACTED:telegram-bot-token]" + tail
    # a start that turns out to be something else is released
    assert sr.feed(TOKEN[:12]) == ""
    assert sr.feed("! not it\n") == TOKEN[:12] + "! not it\n"
    assert sr.flush() == ""


def test_memory_survives_a_flush_of_the_same_stream():
    # the server's log relay flushes on quiet and keeps feeding the same stream
    r = Redactor()
    sr = r.stream()
    out = sr.feed(f"telegram {TOKEN}\n") + sr.flush()
    out += sr.feed(f"later {TOKEN[:20]}") + sr.flush() + sr.feed(f"{TOKEN}\n") + sr.flush()
    assert out == f"telegram [REDACTED:telegram-bot-token]\nlater {TOKEN[:20]}[REDACTED:telegram-bot-token]\n"


GENERIC = fake_secret("generic-api-key", seed=4)
PARTS = ["noise ", "x=1\n", "telegram ", TOKEN, TOKEN[:9], f"\nMY_SERVICE_API_KEY={GENERIC}\n", GENERIC, GENERIC[:7],
         " ", "\n", "ghp_", fake_secret("github-token", seed=6)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(range(len(PARTS))), min_size=1, max_size=30), st.lists(st.integers(0, 400), max_size=30))
def test_any_document_any_chunking_equals_whole_text(parts, cuts):
    doc = "".join(PARTS[i] for i in parts)
    r = Redactor()
    assert _streamed_at(r, doc, [c for c in cuts if c <= len(doc)]) == r.redact(doc)


def test_streams_of_one_redactor_in_threads_keep_their_own_memory():
    # kernels and the broker run one StreamRedactor per output stream, on threads, over one shared Redactor
    r = Redactor()
    tokens = [_telegram_token(200 + i) for i in range(4)]
    docs = [f"telegram {t}\n" + "".join(f"line {k}: {t}\n" for k in range(20)) + f"other {tokens[i - 1]}\n"
            for i, t in enumerate(tokens)]
    results = [None] * len(docs)

    def run(i):
        results[i] = _streamed(r, docs[i], 7)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(docs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, doc in enumerate(docs):
        assert results[i] == r.redact(doc)
        assert tokens[i] not in results[i] and results[i].count("[REDACTED:telegram-bot-token]") == 21
        assert results[i].endswith(f"other {tokens[i - 1]}\n")  # another stream's value is not this one's
