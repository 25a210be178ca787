"""StreamRedactor: a secret split over writes, or printed one character at a time, is still caught."""
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_securellm.detect import Redactor, fake_secret

KEY = fake_secret("anthropic-api-key", seed=5)
GH = fake_secret("github-token", seed=6)
PEM_LINE = fake_secret("private-key", seed=7)


def _redactor(backend="hyperscan"):
    r = Redactor(backend=backend)
    r.add_secret(KEY)
    return r


def _stream(r, text, cuts):
    sr = r.stream()
    out, prev = [], 0
    for c in sorted(set(cuts)) + [len(text)]:
        out.append(sr.feed(text[prev:c]))
        prev = c
    out.append(sr.flush())
    return "".join(out)


DOC = (
    "step 1 ok\n"
    f"key is {KEY} (oops)\n"
    f"spaced: {' '.join(KEY)}\n"
    f"GITHUB_TOKEN={GH}\n"
    f"{PEM_LINE}\n"
    "done, 100% complete\n"
)


def test_char_by_char(backend):
    r = _redactor(backend)
    sr = r.stream()
    out = "".join(sr.feed(c) for c in DOC) + sr.flush()
    assert out == r.redact(DOC)
    assert KEY[10:30] not in out and GH[4:20] not in out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(DOC)), max_size=40))
def test_any_chunking_equals_whole_text(cuts):
    r = _redactor()
    assert _stream(r, DOC, cuts) == r.redact(DOC)


def test_holds_back_only_what_a_match_needs():
    r = _redactor()
    sr = r.stream()
    # plain prose cannot start any match: nothing is held back
    assert sr.feed("loss=0.25 accuracy=0.91\n") == "loss=0.25 accuracy=0.91\n"
    assert sr.pending == 0
    # the start of a GitHub token is held until it completes (or cannot)
    assert sr.feed("token ghp_") == "token "
    assert sr.pending == len("ghp_")
    out = sr.feed(GH[4:] + " and then some more text\n")
    assert out == "[REDACTED:github-token] and then some more text\n"
    # an unfinished candidate is released once it can no longer match
    assert sr.feed("ghp_short \n") == "ghp_short \n"
    assert sr.flush() == ""


def test_flush_redacts_a_truncated_tail():
    r = _redactor()
    sr = r.stream()
    out = sr.feed("last words: " + KEY)
    out += sr.flush()
    assert KEY not in out and "[REDACTED" in out


def test_random_documents_many_chunkings():
    rng = random.Random(42)
    r = _redactor()
    for trial in range(30):
        parts = [rng.choice(["noise ", "x=1\n", KEY, GH, "\x1b[31m", "sk-", "ghp_", "\u200b", "api_key = "]) for _ in range(30)]
        doc = "".join(parts)
        cuts = [rng.randrange(len(doc) + 1) for _ in range(rng.randrange(1, 50))]
        assert _stream(r, doc, cuts) == r.redact(doc), trial


def test_a_rejected_match_does_not_hide_one_starting_inside_it():
    # `NAME=NAME= <value>`: the generic rule first matches the second name as the first name's value and
    # rejects it; the real match starts inside that one. A stream whose chunk boundary falls after the first
    # `=` scans from there and found it, so whole text must too.
    v = fake_secret("generic-api-key", seed=4)
    doc = f"MY_SERVICE_API_KEY=MY_SERVICE_API_KEY= {v}\n"
    r = _redactor()
    expected = r.redact(doc)
    assert expected == "MY_SERVICE_API_KEY=MY_SERVICE_API_KEY= [REDACTED:generic-api-key]\n"
    for size in range(1, len(doc) + 1):
        sr = r.stream()
        assert "".join(sr.feed(doc[i : i + size]) for i in range(0, len(doc), size)) + sr.flush() == expected, size
