"""Strict input (tier 2: a caller, or code in a kernel, sends what it likes): every malformed body to
every endpoint gets a 4xx with one sentence, before any Vault read or provider call, with no traceback
in the server log, and the server keeps answering good requests.

Bodies: the fuzz findings (50,000-level nesting, NaN/Infinity, lone surrogates, a content part without
its required field, max_tokens negative or absurd), Hypothesis-generated bodies from the broker's own
JSON schema (`from_schema` below: the subset of JSON Schema that schema uses; hypothesis-jsonschema
0.23 does not run on this Hypothesis), and byte mutations of valid bodies. A real Jupyter server in its
own process (so a hang or crash cannot hide in the test's event loop), real OpenBao, the stand-in provider.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_securellm.server.schema import CHAT_SCHEMA, MAX_TOKENS, SECRET_SCHEMA

pytestmark = pytest.mark.slow

GOOD = {"model": "demo", "messages": [{"role": "user", "content": "hello strict input"}]}
ENDPOINTS = [("POST", "chat/completions"), ("POST", "secrets/get"), ("GET", "models"), ("GET", "status")]


@pytest.fixture(scope="module")
def stack(demo_stack):
    return demo_stack


def send(stack, method: str, path: str, raw: bytes | None, timeout: float = 30):
    req = urllib.request.Request(f"{stack.base_url}jupyter-securellm/v1/{path}", data=raw, method=method,
                                 headers={"Authorization": f"token {stack.jupyter_token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def provider_calls(stack) -> int:
    return len(stack.provider.requests)


def log_text(stack) -> str:
    return (stack.workdir / "jupyter.log").read_text(errors="replace")


def assert_client_error(stack, code: int, raw: bytes, before_calls: int):
    assert 400 <= code < 500, (code, raw[:300])
    err = json.loads(raw)["error"]
    assert err["type"] and err["message"].endswith(".") and "\n" not in err["message"], err
    assert provider_calls(stack) == before_calls, "a malformed body reached the provider"


def assert_still_works(stack):
    code, raw = send(stack, "POST", "chat/completions", json.dumps(GOOD).encode())
    assert code == 200 and b"echo: hello strict input" in raw, raw[:300]


FUZZ_FINDINGS = {
    "nested 50,000": b'{"model": "demo", "messages": [{"role": "user", "content": "x"}], "response_format": '
                     + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}",
    "nested list 50,000": b"[" * 50_000 + b"]" * 50_000,
    "NaN": b'{"model": "demo", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}',
    "Infinity": b'{"model": "demo", "messages": [{"role": "user", "content": "x"}], "top_p": -Infinity}',
    "lone surrogate": b'{"model": "demo", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
    "surrogate key": b'{"model": "demo", "messages": [{"role": "user", "content": "x", "\\udfff": 1}]}',
    "image part without url": json.dumps({"model": "demo", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {}}]}]}).encode(),
    "image part without image_url": json.dumps({"model": "demo", "messages": [{"role": "user", "content": [
        {"type": "image_url"}]}]}).encode(),
    "text part without text": json.dumps({"model": "demo", "messages": [{"role": "user", "content": [
        {"type": "text"}]}]}).encode(),
    "max_tokens negative": json.dumps(dict(GOOD, max_tokens=-5)).encode(),
    "max_tokens absurd": json.dumps(dict(GOOD, max_tokens=10 ** 12)).encode(),
    "max_completion_tokens over the bound": json.dumps(dict(GOOD, max_completion_tokens=MAX_TOKENS + 1)).encode(),
    "invalid utf-8": b'{"model": "demo", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
}


@pytest.mark.parametrize("name", sorted(FUZZ_FINDINGS))
def test_each_fuzz_finding_is_a_400_with_one_sentence(stack, name):
    before, log_before = provider_calls(stack), len(log_text(stack))
    code, raw = send(stack, "POST", "chat/completions", FUZZ_FINDINGS[name])
    assert code == 400, (name, code, raw[:300])
    assert_client_error(stack, code, raw, before)
    assert "Traceback" not in log_text(stack)[log_before:]
    assert_still_works(stack)


def test_max_tokens_at_the_bound_is_accepted(stack):
    code, raw = send(stack, "POST", "chat/completions", json.dumps(dict(GOOD, max_tokens=MAX_TOKENS)).encode())
    assert code == 200, raw[:300]


def from_schema(schema: dict, depth: int = 0):
    """A Hypothesis strategy for (mostly) valid instances of `schema`, plus near misses of each rule."""
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(s, depth) for s in schema["anyOf"]])
    t = schema.get("type")
    if isinstance(t, list):
        return st.one_of([from_schema(dict(schema, type=x), depth) for x in t])
    if t == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
    if t == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        return st.integers(lo, hi) | st.sampled_from([v for v in (lo, hi) if v is not None] or [0])
    if t == "number":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False) | st.integers(lo and int(lo), hi and int(hi))
    if t == "boolean":
        return st.booleans()
    if t == "null":
        return st.none()
    if t == "array":
        items = from_schema(schema.get("items", {"type": "string"}), depth + 1)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 3), 3))
    if t == "object" or "properties" in schema:
        props = schema.get("properties", {})
        for sub in schema.get("allOf", []):  # if/then: the part's own required fields
            props = {**props, **sub.get("then", {}).get("properties", {})}
        required = set(schema.get("required", []))
        if depth > 6:
            props = {k: v for k, v in props.items() if k in required}
        return st.fixed_dictionaries(
            {k: from_schema(props.get(k, {"type": "string"}), depth + 1) for k in required},
            optional={k: from_schema(v, depth + 1) for k, v in props.items() if k not in required})
    return st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))


_SCHEMA_BODIES = {
    "chat/completions": from_schema(CHAT_SCHEMA),
    "secrets/get": from_schema(SECRET_SCHEMA),
}


@pytest.mark.parametrize("path", sorted(_SCHEMA_BODIES))
def test_bodies_generated_from_the_schema_never_get_a_5xx(stack, path):
    log_before = len(log_text(stack))

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(body=_SCHEMA_BODIES[path])
    def check(body):
        if path == "chat/completions":
            body = dict(body, model="no-such-model")  # valid bodies stop at the alias check, before any Vault read
        else:
            body = dict(body, path="not/allowed/" + body["path"].strip("/"))  # outside user_secret_paths
        before = provider_calls(stack)
        code, raw = send(stack, "POST", path, json.dumps(body).encode())
        assert_client_error(stack, code, raw, before)

    check()
    assert "Traceback" not in log_text(stack)[log_before:]
    assert_still_works(stack)


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for kind, pos, byte in ops:
        if not b:
            break
        pos %= len(b)
        if kind == 0:
            b[pos] = byte
        elif kind == 1:
            b.insert(pos, byte)
        elif kind == 2:
            del b[pos]
        else:
            b[pos:pos] = [b"NaN", b"\\ud800", b"[" * 80, b'{"a":', b"-1e309", b"\x00"][byte % 6]
    return bytes(b)


_VALID = {
    "chat/completions": json.dumps(dict(GOOD, max_tokens=16, temperature=0.5, stop=["x"],
                                        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}])).encode(),
    "secrets/get": json.dumps({"path": "db/warehouse", "key": "password"}).encode(),
    "models": b"",
    "status": b"",
}


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_byte_mutations_of_valid_bodies_never_get_a_5xx_or_hang(stack, method, path):
    log_before = len(log_text(stack))
    ops = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10 ** 6), st.integers(0, 255)), min_size=1, max_size=6)

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(ops=ops)
    def check(ops):
        raw = _mutate(_VALID[path], ops) if _VALID[path] else bytes(o[2] for o in ops)
        code, body = send(stack, "POST" if _VALID[path] else method, path, raw if method == "POST" else None,
                          timeout=30)  # urlopen's timeout: a hang fails the test
        assert code < 500, (code, raw[:200], body[:300])

    check()
    assert "Traceback" not in log_text(stack)[log_before:]
    assert_still_works(stack)
