"""Every form of a known secret a user or a model can print (`testing.leaks.secret_forms`): the lists of
its characters (Python, JSON, wrapped one per line), spaced out, encoded; caught in a whole text, inside a
JSON body (escaped once more), and in a stream cut into chunks of any size.

A separated form is many times longer than its value (`'s', 'k', ...` is five characters per character):
the stream must hold it whole until it ends, however long, and the separators of a list printed inside
JSON (`\\"`, `,\\n `) are separators too.
"""
import json

import pytest

from jupyter_securellm.detect import Redactor, fake_secret
from jupyter_securellm.testing.leaks import find_leaks, secret_forms

#: a long key (164 characters) and a short one: the list forms of the long key run to 1,100+ characters
KEYS = {
    "openai": fake_secret("openai-api-key", seed=11),
    "github": fake_secret("github-token", seed=12),
}
FORMS = sorted(secret_forms(KEYS["openai"]))


@pytest.fixture(scope="module", params=["hyperscan", "python"])
def redactor(request):
    r = Redactor(backend=request.param)
    for k in KEYS.values():
        r.add_secret(k)
    return r


def _stream(r, text, size):
    sr = r.stream()
    out = [sr.feed(text[i : i + size]) for i in range(0, len(text), size)]
    out.append(sr.flush())
    return "".join(out)


def _leaks(text, key):
    """Forms of `key` in `text`, as printed and JSON-escaped once more."""
    leaks = find_leaks(text, key)
    leaks += [f"{name} (JSON-escaped)" for name, form in secret_forms(key).items()
              if json.dumps(form)[1:-1] != form and json.dumps(form)[1:-1] in text]
    return leaks


@pytest.mark.parametrize("key", sorted(KEYS))
@pytest.mark.parametrize("form", FORMS)
def test_every_form_in_whole_text_and_json_body(redactor, key, form):
    value = secret_forms(KEYS[key])[form]
    text = f"here it is: {value} ."
    assert _leaks(redactor.redact(text), KEYS[key]) == []
    body = json.dumps({"choices": [{"message": {"content": text}}]})
    out = redactor.redact(body)
    assert _leaks(out, KEYS[key]) == []
    assert "[REDACTED:" in out


@pytest.mark.parametrize("size", [1, 2, 4, 7, 16, 64])
@pytest.mark.parametrize("key", sorted(KEYS))
@pytest.mark.parametrize("form", FORMS)
def test_every_form_in_a_stream(redactor, key, form, size):
    value = secret_forms(KEYS[key])[form]
    text = f"here it is: {value} ."
    out = _stream(redactor, text, size)
    assert _leaks(out, KEYS[key]) == [], f"{form} leaked through a stream cut every {size} characters"
    assert out.startswith("here it is: ") and out.endswith(" .")


@pytest.mark.parametrize("size", [1, 4, 7])
@pytest.mark.parametrize("form", ["py-list", "json-list", "py-list-wrapped", "json-list-escaped"])
def test_list_form_inside_a_streamed_json_body(redactor, form, size):
    """An SSE-like JSON body carrying a list form, escaped, streamed in small chunks."""
    key = KEYS["openai"]
    body = json.dumps({"choices": [{"delta": {"content": f"x {secret_forms(key)[form]} y"}}]})
    assert _leaks(_stream(redactor, body, size), key) == []


def test_ordinary_lists_stream_through(redactor):
    """Lists of single characters that are no secret are not redacted, and come out whole."""
    text = "letters: " + repr(list("abcdefghijklmnopqrstuvwxyz" * 3)) + " done"
    for size in (1, 4, 7):
        assert _stream(redactor, text, size) == text
    assert redactor.redact(text) == text
