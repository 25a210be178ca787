"""Bad input: bytes that are not UTF-8, NUL bytes, empty input, huge lines, pathological patterns."""
import time

import pytest

from jupyter_securellm.detect import Redactor, Scanner, fake_secret

KEY = fake_secret("github-token", seed=9)


def test_empty_input(scanner):
    assert scanner.scan("") == [] and scanner.scan(b"") == []
    assert Redactor(scanner).redact("") == ""


def test_non_utf8_bytes_round_trip(scanner):
    raw = b"\xff\xfe garbage \x80\x81 " + KEY.encode() + b" \xc3\x28 tail"
    out = Redactor(scanner).redact(raw)
    assert isinstance(out, bytes)
    assert KEY.encode() not in out
    assert out.startswith(b"\xff\xfe garbage \x80\x81 ") and out.endswith(b" \xc3\x28 tail")


def test_nul_bytes(scanner):
    text = "\x00" * 10 + KEY + "\x00more\x00"
    (f,) = scanner.scan(text)
    assert (f.start, f.end, f.rule_id) == (10, 10 + len(KEY), "github-token")


def test_wrong_types_are_refused():
    with pytest.raises(TypeError, match="str or bytes"):
        Scanner().scan(12345)
    with pytest.raises(ValueError, match="backend"):
        Scanner(backend="re2")
    with pytest.raises(ValueError, match="rule_id"):
        Redactor(placeholder="[{secret}]")


def test_hundred_megabyte_single_line():
    line = "a" * 50_000_000 + " " + KEY + " " + "b" * 50_000_000
    r = Redactor(backend="hyperscan")
    out = r.redact(line)
    assert len(out) == len(line) - len(KEY) + len("[REDACTED:github-token]")
    assert KEY not in out


def _elapsed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@pytest.mark.parametrize(
    "unit",
    ["key=", "api_key = '", "sk-", "eyJ", "://a:", "a" * 7, "s.", "-----BEGIN PRIVATE KEY-----", "\u200b", "AIza", "password = \""],
)
def test_pathological_input_scales_linearly(scanner, unit):
    # 4x the input may take at most ~8x the time (linear plus noise); a quadratic blow-up would take 16x
    small = unit * (20_000 // len(unit))
    big = small * 4
    scanner.scan(small)  # warm caches
    t_small = min(_elapsed(lambda: scanner.scan(small)) for _ in range(3))
    t_big = min(_elapsed(lambda: scanner.scan(big)) for _ in range(3))
    assert t_big <= max(8 * t_small, 0.05), (unit, t_small, t_big)
