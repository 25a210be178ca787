"""Known secrets (values registered at run time) are caught in every form code prints them (tier 1)."""
import base64
import binascii
import json
import re
import urllib.parse

import pytest

from jupyter_securellm.detect import Redactor, Scanner, fake_secret, fingerprint

KEY = fake_secret("openai-api-key", seed=11)
PASSWORD = "db-pass/w0rd+with&odd\"chars"  # securellm: allow -- a non-LLM secret with characters every encoding treats differently


def _forms(secret):
    raw = secret.encode()
    yield "raw", secret
    for pad in (b"", b"x", b"xy"):
        yield f"base64+{len(pad)}", base64.b64encode(pad + raw).decode()
        yield f"base64url+{len(pad)}", base64.urlsafe_b64encode(pad + raw).decode()
    yield "hex", binascii.hexlify(raw).decode()
    yield "HEX", binascii.hexlify(raw).decode().upper()
    yield "url", urllib.parse.quote(secret, safe="")
    yield "url-plus", urllib.parse.quote_plus(secret)
    yield "json", json.dumps({"v": secret})
    yield "json-twice", json.dumps(json.dumps({"v": secret}))
    yield "repr", repr(secret)
    yield "reversed", secret[::-1]
    yield "spaces", " ".join(secret)
    yield "newlines", "\n".join(secret)
    yield "zero-width", "\u200b".join(secret)
    yield "ansi", "".join(f"\x1b[3{i % 8}m{c}\x1b[0m" for i, c in enumerate(secret))
    yield "py-list", str(list(secret))
    yield "json-list", json.dumps(list(secret))
    yield "wrapped-list", "[" + ",\n ".join(repr(c) for c in secret) + "]"


def _fragments(secret):
    # any 8-character window of the secret, raw or reversed, would be a leak
    return [secret[i : i + 8] for i in range(0, len(secret) - 8, 4)] + [secret[::-1][i : i + 8] for i in range(0, len(secret) - 8, 4)]


@pytest.mark.parametrize("secret", [KEY, PASSWORD], ids=["provider-key", "password"])
@pytest.mark.parametrize("name,form", list(_forms(KEY)), ids=[n for n, _ in _forms(KEY)])
def test_every_form_is_redacted(backend, secret, name, form):
    if secret is not KEY:
        form = dict(_forms(secret))[name]
    r = Redactor(backend=backend)
    r.add_secret(secret)
    text = f"log line: {form} -- end"
    out = r.redact(text)
    assert "[REDACTED:" in out, name
    assert out.startswith("log line: ") and out.endswith(" -- end")
    for frag in _fragments(secret):
        assert frag not in out
    for f in r.scanner.scan(text):
        assert f.fingerprint == fingerprint(secret) or f.rule_id != "known-secret"


def test_short_secrets_are_refused():
    with pytest.raises(ValueError, match="at least 6"):
        Scanner().add_secret("abc")
    with pytest.raises(TypeError):
        Scanner().add_secret(b"bytes-not-allowed")


def test_adding_a_secret_takes_effect_immediately(backend):
    s = Scanner(backend=backend)
    assert s.scan("the value hunter2hunter2 appears") == []
    s.add_secret("hunter2hunter2")
    assert [f.rule_id for f in s.scan("the value hunter2hunter2 appears")] == ["known-secret"]
    s.add_secret("hunter2hunter2")  # idempotent
    assert s.known_secret_count == 1


def test_finding_never_shows_the_value():
    s = Scanner(known_secrets=[PASSWORD])
    (f,) = s.scan(f"x {PASSWORD} y")
    assert PASSWORD not in repr(f) and PASSWORD not in str(f)
    assert f.fingerprint == fingerprint(PASSWORD) and len(f.fingerprint) == 24
    assert fingerprint(PASSWORD) != fingerprint(PASSWORD + "x")


def test_non_ascii_secret(backend):
    secret = "pässwörd-ünïcode-42"
    r = Redactor(backend=backend)
    r.add_secret(secret)
    assert r.redact(f"[{secret}]") == "[[REDACTED:known-secret]]"
    assert "pässwörd" not in r.redact(json.dumps(secret))
    assert "[REDACTED" in r.redact(urllib.parse.quote(secret))


def test_pieces_of_a_long_secret_are_redacted(backend):
    """A key handed out in halves, or truncated, is still a leak."""
    r = Redactor(backend=backend)
    r.add_secret(KEY)
    half = len(KEY) // 2
    for piece in (KEY[:half], KEY[half:], KEY[:-5], KEY[7:7 + 19]):
        out = r.redact(f"part {piece} end")
        assert out.startswith("part ") and out.endswith(" end")
        assert "[REDACTED:" in out
        # at most FRAGMENT_STEP - 1 characters may stay visible at each edge of the piece
        visible = re.sub(r"\[REDACTED:[a-z-]+\]", "", out[len("part "):-len(" end")])
        assert len(visible) <= 6, len(visible)
    # short secrets have no fragments: ordinary words stay
    r.add_secret("short-pass1")
    assert r.redact("short-pa") == "short-pa"
