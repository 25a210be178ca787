"""What `%load_ext` pays for the engine: importing it compiles no regex of ours, the bundled rules come
from a JSON cache that is used only when it holds exactly the current source, and the digests are SHA-256
whichever module computes them."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from jupyter_securellm.detect import Redactor, fake_secret, fingerprint, load_rules
from jupyter_securellm.detect import rules as rules_mod
from jupyter_securellm.detect.digest import sha256
from jupyter_securellm.detect.lazy_regex import LazyRegex

PROBE = r"""
import json, re._compiler, sys, traceback
ours = []
orig = re._compiler.compile
def spy(p, flags=0):
    # who called re.compile (or re.match, ...): the first frame outside the re package
    caller = next(f for f in reversed(traceback.extract_stack()[:-1]) if "/re/" not in f.filename)
    if "jupyter_securellm" in caller.filename:
        ours.append(f"{caller.filename}:{caller.lineno}")
    return orig(p, flags)
re._compiler.compile = spy
import jupyter_securellm.detect as d
rules = d.default_rules()
at_import = list(ours)
tomllib = "tomllib" in sys.modules
key = d.fake_secret("github-token", seed=3)
out = d.Redactor().redact("token " + key)
print(json.dumps({"compiled": at_import, "tomllib": tomllib, "rules": len(rules), "redacted": key not in out}))
"""


def _probe(cache: str) -> dict:
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_engine_compiles_nothing_and_a_warm_cache_skips_tomllib(tmp_path):
    cold = _probe(str(tmp_path))
    warm = _probe(str(tmp_path))
    for run in (cold, warm):
        assert run["compiled"] == [], "a regex compiled at import: %s" % run["compiled"]
        assert run["rules"] == len(rules_mod.default_rules())
        assert run["redacted"]  # the rules still compile (on first use) and find a key
    assert cold["tomllib"] and not warm["tomllib"]
    assert list(tmp_path.glob("jupyter_securellm/rules-toml-*.json"))


def test_rules_cache_is_used_only_for_the_exact_source(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = rules_mod._bundled_rules_text()
    parsed = rules_mod._parse_toml(text)
    assert rules_mod._parse_cached(text) == parsed  # cold: parsed and stored
    (cache,) = tmp_path.glob("jupyter_securellm/rules-toml-*.json")
    assert rules_mod._parse_cached(text) == parsed  # warm: read back, the same data
    # a file under the same name holding other rules (a collision, an edit, a tampered file) is not used
    cache.write_text(json.dumps({"source": text + "\n# edited", "data": {"rule": []}}))
    assert rules_mod._parse_cached(text) == parsed
    cache.write_text("{not json")
    assert rules_mod._parse_cached(text) == parsed
    cache.write_text(json.dumps(["a list"]))
    assert rules_mod._parse_cached(text) == parsed
    assert load_rules() == load_rules(text)  # the cached path gives the same rules as parsing


def test_rules_cache_in_an_unwritable_place_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache directory cannot be made, even by root
    assert load_rules() == load_rules(rules_mod._bundled_rules_text())


def test_digest_is_sha256():
    for data in (b"", b"x", os.urandom(1000)):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    salted = hashlib.sha256(b"jupyter-securellm/fingerprint/v1\0" + "k\u00e9y".encode()).hexdigest()[:24]
    assert fingerprint("k\u00e9y") == salted  # fingerprints stored in baselines stay valid


def test_lazy_regex_compiles_on_first_use_and_then_is_a_pattern():
    rx = LazyRegex(r"a(b+)", 0)
    assert "search" not in vars(rx)
    assert rx.search("xabb").group(1) == "bb"
    assert "search" in vars(rx)  # bound: later calls go straight to the compiled pattern
    assert rx.sub("-", "abab") == "--"
    assert [m.span() for m in rx.finditer("ab ab")] == [(0, 2), (3, 5)]
    assert rx.fullmatch("abb") and not rx.match("b")
    with pytest.raises(AttributeError):
        rx.no_such_method  # noqa: B018


def test_first_scan_after_import_finds_every_rule_kind():
    # lazily compiled rules and filters: the first scan of a fresh Redactor is the full engine
    r = Redactor()
    for rid in ("openai-api-key", "github-token", "aws-access-key-id", "private-key"):
        key = fake_secret(rid, seed=11)
        assert key not in r.redact(f"value: {key}\n"), rid
