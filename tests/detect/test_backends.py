"""Hyperscan and the pure-Python fallback give identical findings (so a missing wheel costs speed, not safety)."""
import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_securellm.detect import Scanner, fake_secret
from jupyter_securellm.testing.corpus import labelled_corpus, noisy_text

HS = Scanner(backend="hyperscan")
PY = Scanner(backend="python")
KNOWN = fake_secret("openai-api-key", seed=2)
for s in (HS, PY):
    s.add_secret(KNOWN)
    s.add_secret("correct horse battery staple")

PIECES = [fake_secret(r, seed=i) for i, r in enumerate(["github-token", "aws-access-key-id", "slack-token", "jwt", "google-api-key"])]
PIECES += [KNOWN, "api_key = ", "password='", "://user:", "@host", "sk-", "ghp_", "AKIA", "eyJ", " ", "\n", "\u200b",
           "\x1b[32m", "é", "\x00", "=", '"', "token: ", "correct horse", " battery staple", "-----BEGIN PRIVATE KEY-----\n"]


def _same(text):
    a = [(f.start, f.end, f.rule_id, f.fingerprint) for f in HS.scan(text)]
    b = [(f.start, f.end, f.rule_id, f.fingerprint) for f in PY.scan(text)]
    assert a == b


def test_identical_on_labelled_corpus():
    for sample in labelled_corpus(3):
        _same(sample.text)


def test_identical_on_noisy_text():
    text, planted = noisy_text(300_000, seed=4, secret_every=50)
    _same(text)
    assert len(HS.scan(text)) >= planted


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), max_size=40))
def test_identical_on_generated_text(parts):
    _same("".join(parts))


def test_auto_falls_back_when_hyperscan_is_missing(tmp_path):
    # a real interpreter where `import hyperscan` fails, as on a platform without the wheel
    (tmp_path / "hyperscan.py").write_text("raise ImportError('no hyperscan here')\n")
    code = (
        "from jupyter_securellm.detect import Scanner, fake_secret\n"
        "s = Scanner()\n"
        "k = fake_secret('github-token')\n"
        "print(s.backend_name, [f.rule_id for f in s.scan('t=' + k + ' ')])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "python ['github-token']"
