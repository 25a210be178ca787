"""False alarms on real text: quoted open-source passages and the classes they stand for stay silent."""
import sys
from pathlib import Path

import pytest

from jupyter_securellm.detect import Scanner

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SNIPPETS = tomllib.loads((Path(__file__).parent / "realtext_snippets.toml").read_text(encoding="utf-8"))["snippet"]

#: One line per class seen on site-packages, written here (not quoted) in the shape the class takes.
CLASSES = {
    "attribute chain": "x.tokenize = y.tokenize",
    "minified JavaScript exports": 'e.CancellationTokenSource=e.CancellationToken=void 0;var t,r=n(7);',
    "minified JavaScript member": "this.register((0,s.addDisposableDomListener)(this._canvas,\"click\"))",
    "object literal in minified JavaScript": "var u={email:!0,month:!0,number:!0,password:!0,range:!0,search:!0};",
    "type annotation with digits": "def encode(self, private_key: ed25519.Ed25519PrivateKey) -> bytes: ...",
    "Windows API name": "_DuplicateTokenEx = windll.advapi32.DuplicateTokenEx",
    "dated feature name": '"token-counting-2024-11-01": "token-counting-2024-11-01",',
    "usage counters": "cache_creation_tokens=tokens.cache_creation_5m_input_tokens + tokens.cache_read_tokens",
    "pagination cursor": '"NextToken": "eyJ2IjoxLCJwYWdlIjo0MiwibGltaXQiOjEwMH0K",',
    "documentation URL password": 'engine = create_engine("postgresql+psycopg2://scott:tiger@localhost/test")',
    "user:user URL": 'dao = CrashDAO("postgresql://winappdbg:winappdbg@localhost/crashes")',
    "shell variable path": "PWD: '/Users/someone/projects/app2'",
    "timestamp": '"PasswordLastUsed": "2016-09-08T21:47:36Z",',
    "env reference": "api_key: os.environ/E2B_API_KEY",
    "documentation example": "Example api_key='d53a5c0ecc68ae6295c69f91926b2bd3' (a masked sample)",
    "i18n key": '"aria-label":u(f?"shared.passwordInput.hide":"shared.passwordInput.show")',
    "module reference": '"pwd": "IPython.core.magics.osm:OSMagics",',
    "comparison in minified JavaScript": "if(e.tokenTypeIdx===t.tokenTypeIdx)return!0;",
    "class name with a version and an acronym": "    usage_tokens: AnthropicV3MessageUsageTokens",
    "class name with a one-letter acronym word": "    oauth_token_store: RefreshableOAuthTokenCache | None = None,",
    "letter-number standard name": "    secret_key: x448.X448PrivateKey,",
}


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s["source"].split(",")[0] + " " + s["source"].split(",")[1] for s in SNIPPETS])
def test_quoted_real_text_stays_silent(scanner, snippet):
    assert snippet["licence"] and snippet["source"]
    found = scanner.scan(snippet["text"])
    assert found == [], [(f.rule_id, snippet["text"][f.start - 20 : f.start]) for f in found]


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_false_alarm_classes_stay_silent(scanner, name):
    assert scanner.scan(CLASSES[name]) == []


def test_a_real_key_beside_them_is_still_found():
    from jupyter_securellm.detect import fake_secret

    key = fake_secret("github-token", seed=3)
    text = "\n".join(CLASSES.values()) + f"\nGITHUB_TOKEN={key}\n"
    assert [f.rule_id for f in Scanner().scan(text)] == ["github-token"]
