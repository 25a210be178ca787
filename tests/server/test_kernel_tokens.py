"""Kernel capability tokens and env sanitizing, as pure units (the REST tests use real kernels)."""
import hashlib

from jupyter_securellm.server.kernels import DEFAULT_ENV_DENY_PATTERNS, EnvSanitizer, KernelLaunchService, KernelTokens


def test_tokens_are_bound_hashed_and_revocable():
    live = {"k1", "k2"}
    t = KernelTokens(is_live=lambda k: k in live)
    a = t.mint("k1", "alice")
    b = t.mint("k2", "alice")
    assert a != b and len(a) >= 40
    assert t.check(a).kernel_id == "k1" and t.check(a).user == "alice"
    # only digests are stored
    assert a not in repr(t.__dict__) and hashlib.sha256(a.encode()).hexdigest() in t._by_digest
    # restart: a fresh token replaces the old one
    a2 = t.mint("k1", "alice")
    assert t.check(a) is None and t.check(a2).kernel_id == "k1"
    assert t.revoke("k1") and t.check(a2) is None
    # a kernel that disappeared without revocation: its token dies too
    live.discard("k2")
    assert t.check(b) is None
    assert t.check(None) is None and t.check("") is None and t.check("x" * 1000) is None


def test_env_sanitizer_defaults():
    s = EnvSanitizer(DEFAULT_ENV_DENY_PATTERNS)
    env = {"PATH": "/usr/bin", "HOME": "/home/u", "OPENAI_API_KEY": "x", "openai_api_key": "x",
           "GITHUB_TOKEN": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "eu", "DB_PASSWORD": "x",
           "VAULT_TOKEN": "x", "VAULT_ADDR": "http://v", "JUPYTERHUB_API_TOKEN": "x", "MY_SECRET_SAUCE": "x",
           "LANG": "C.UTF-8", "JPY_SESSION_NAME": "n.ipynb"}
    clean, removed = s.sanitize(env)
    assert set(clean) == {"PATH", "HOME", "VAULT_ADDR", "LANG", "JPY_SESSION_NAME"}
    assert "OPENAI_API_KEY" in removed and "openai_api_key" in removed


def test_launch_env_adds_url_and_token_after_sanitizing():
    t = KernelTokens()
    known = "value-that-is-a-known-secret"
    svc = KernelLaunchService(t, EnvSanitizer(["*_TOKEN"], value_check=lambda v: v == known),
                              url_getter=lambda: "http://127.0.0.1:1/x/jupyter-securellm/v1", user="bob")
    seen = []
    svc.on_token = seen.append
    env = svc.launch_env("kid", {"JUPYTER_SECURELLM_KERNEL_TOKEN": "forged", "SOME_TOKEN": "a",
                                 "INNOCENT_NAME": known, "PATH": "/bin"})
    assert env["JUPYTER_SECURELLM_URL"].endswith("/jupyter-securellm/v1")
    assert env["JUPYTER_SECURELLM_KERNEL_TOKEN"] != "forged" and seen == [env["JUPYTER_SECURELLM_KERNEL_TOKEN"]]
    assert "SOME_TOKEN" not in env and "INNOCENT_NAME" not in env and env["PATH"] == "/bin"
    assert t.check(env["JUPYTER_SECURELLM_KERNEL_TOKEN"]).user == "bob"
    svc.kernel_gone("kid", restart=False)
    assert t.check(env["JUPYTER_SECURELLM_KERNEL_TOKEN"]) is None
