"""Recall on shapes found missing (issue 10, and TruffleHog's detector tests via benchmarks/bench_recall.py).

Every value is generated here at run time; the held-out examples themselves are never committed.
"""
import random
import string

import pytest

from jupyter_securellm.detect import Redactor, fake_secret
from jupyter_securellm.detect import filters
from jupyter_securellm.testing.gocases import parse_cases

_RNG = random.Random(10)


def _rand(chars: str, n: int) -> str:
    return "".join(_RNG.choice(chars) for _ in range(n))


AN = string.ascii_letters + string.digits
B64 = AN + "+/"
UP32 = string.ascii_uppercase + "234567"


def _symbol_password() -> str:
    return _rand(string.ascii_letters, 5) + _rand(string.digits, 3) + "#" + _rand(AN, 4) + "!" + _rand(AN, 3)


#: (expected rule, text, the secret in it) - issue 10's named misses, then shapes seen in foreign tests
def _cases():
    pw = _symbol_password()
    yield "generic-password-unquoted", f"DB_PASSWORD={pw}\n", pw
    pw = _symbol_password()
    yield "generic-password-unquoted", f"database:\n  password: {pw}\n  host: db\n", pw
    pw = _symbol_password()
    yield "generic-password", f'os.environ["DB_PASSWORD"] = "{pw}"\n', pw
    tok = "hvb." + _rand(AN + "_-", 150)
    yield "vault-token", f"VAULT_TOKEN={tok}\n", tok
    tok = "hvr." + _rand(AN + "_-", 90)
    yield "vault-token", f"recovery token: {tok}\n", tok
    key = "sk-proj-" + _rand(AN, 20) + "T3BlbkFJ" + _rand(AN, 20)
    yield "openai-api-key", f'OPENAI_API_KEY = "{key}"', key
    key = "sk-reporting-bot-" + _rand(AN, 20) + "T3BlbkFJ" + _rand(AN, 20)
    yield "openai-api-key", f'OPENAI_API_KEY = "{key}"', key
    key = "ABIA" + _rand(string.ascii_uppercase + string.digits, 16)
    yield "aws-access-key-id", f"aws credentials {{\n  id: {key}\n}}", key
    key = "hf_" + _rand(AN, 34)
    yield "huggingface-token", f'"huggingface_secret": "{key}"', key
    key = "ghs_" + _rand(AN, 9) + "_" + _rand(AN, 120)
    yield "github-token", f'"github_secret": "{key}"', key
    key = "SG." + _rand(AN + "-_", 21) + "." + _rand(AN + "-_", 43)
    yield "sendgrid-api-key", f"sendgrid = '{key}'", key
    key = _rand(string.digits, 9) + ":B" + _rand(AN, 34)
    yield "telegram-bot-token", f"TELEGRAM_TOKEN = '{key}'", key
    key = _rand(B64, 86) + "=="
    yield "azure-storage-connection-string", f'    {{ "AccountKey", "{key}" }},', key
    yield "azure-storage-connection-string", f"<account_key>{key}</account_key>", key
    pw = _rand(string.ascii_uppercase, 2) + _rand(string.digits, 2) + _rand(string.ascii_lowercase, 2) + _rand(AN, 30)
    yield "generic-password-unquoted", f"cache.redis.cache.windows.net:6380,password={pw},ssl=True", pw
    tok = _rand(B64, 320)
    yield "aws-session-token", f"aws credentials {{\n  session: {tok}\n}}", tok
    pw = _symbol_password()
    yield "generic-password-unquoted", f"<server>\n  <id>nexus</id>\n  <password>{pw}</password>\n</server>", pw
    key = _rand(AN, 32)
    yield "generic-api-key", f'System.setProperty("SERVICE_TOKEN", "{key}")', key
    key = _rand(AN, 32)
    yield "generic-api-key", f'    api_key: str = "{key}"', key
    # an access key id and its secret stored together, with no name saying "aws secret"
    kid, sec = "AKIA" + _rand(UP32, 16), _rand(B64, 40)
    yield "aws-secret-access-key", f"<id>{{{kid}}}</id>\n  <secret>{{AQAAABAAA .{sec};}}</secret>", sec
    yield "aws-secret-access-key", f"User name,Password,Access key ID,Secret access key\nci,,{kid},{sec}\n", sec
    kid, sec, session = "ASIA" + _rand(UP32, 16), _rand(B64, 40), _rand(B64, 400) + "="
    jenkins = f"<id>{{{kid}}}</id>\n<secret>{{AQAAABAAA {sec}}}</secret>\n<session>{{AQAAABAAA {session}}}</session>"
    yield "aws-secret-access-key", jenkins, sec
    yield "aws-session-token", jenkins, session
    # Slack ids are numbers: a run of one digit in an id is not a mask
    tok = "xoxa-2-5" + "1" * 8 + "-3" + "1" * 10 + "-" + _rand(string.digits, 13) + "-" + _rand("0123456789abcdef", 18)
    yield "slack-token", f'slackToken="{tok}"', tok
    tok = "xoxb-" + _rand(string.digits, 11) + "-" + "7" * 13 + "-" + _rand(AN, 24)
    yield "slack-token", f"SLACK_BOT_TOKEN={tok}", tok


CASES = list(_cases())


@pytest.mark.parametrize("rule_id,text,secret", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_shape_is_found_by_its_rule_and_redacted(backend, rule_id, text, secret):
    redactor = Redactor(backend=backend)
    found = redactor.scanner.scan(text)
    assert any(f.rule_id == rule_id and text[f.start : f.end] == secret for f in found), (rule_id, found)
    assert secret not in redactor.redact(text)


def test_a_token_far_along_the_keywords_line_is_taken(backend):
    # the keyword-gated form reaches 160 characters along the line, not onto the next one
    tok = _rand(string.digits, 9) + ":B" + _rand(AN, 34)
    text = f"telegram_bot = Bot(name='deploy notifications', chat='the release channel', token='{tok}')\n"
    redactor = Redactor(backend=backend)
    assert [text[f.start : f.end] for f in redactor.scanner.scan(text)] == [tok]
    assert tok not in redactor.redact(text)
    # on another line, without the keyword, a token not starting AA is not taken
    assert redactor.scanner.scan(f"telegram\nversion {tok}\n") == []


def test_hex_digest_beside_an_access_key_id_is_not_its_secret(scanner):
    kid, digest = "AKIA" + _rand(UP32, 16), _rand("0123456789abcdef", 40)
    text = f"rotated {kid} in commit {digest}\n"
    assert [f.rule_id for f in scanner.scan(text)] == ["aws-access-key-id"]


def test_the_same_slack_id_typed_in_every_slot_is_a_placeholder(scanner):
    # by the Slack rule, and by the generic rule under a token's name
    text = f'"slack_token": "xoxp-1234-1234-1234-{_rand("0123456789abcdef", 32)}"'
    assert scanner.scan(text) == []


def test_typed_sequences_are_stand_ins_for_generic_rules_only(scanner):
    assert scanner.scan(f'DATABRICKS_TOKEN=dapi12345678{_rand(AN, 24)}') == []
    assert scanner.scan(f'service_token = "{_rand(AN, 10)}klmnopqrstuv{_rand(AN, 10)}"') == []
    # a provider's shape is specific enough: its own tests type keys so (TruffleHog's Anthropic example)
    key = "sk-ant-api03-" + _rand(AN, 20) + "abcdefghijklmnop" + _rand(AN, 57) + "AA"
    assert [f.rule_id for f in scanner.scan(f"key: {key}")] == ["anthropic-api-key"]


def test_random_values_almost_never_hold_a_typed_sequence():
    rng = random.Random(8)
    values = ["".join(rng.choice(B64) for _ in range(64)) for _ in range(20000)]
    assert sum(filters.typed_sequence(v) for v in values) == 0


@pytest.mark.parametrize("text", [
    # anti-forgery tokens are printed into every page served
    "csrf-token={b64}",
    '<meta name="xsrfToken" content="{b64}">',
    # a package coordinate with its version
    'notes = "Maven - io.jsonwebtoken:jjwt-jackson-0.11.2"',
])
def test_shapes_that_are_not_secrets_stay_silent(scanner, text):
    assert scanner.scan(text.format(b64=_rand(B64, 86) + "==")) == []


def test_random_values_are_rarely_read_as_names():
    # a generic rule drops values that look like names; random ones must almost never be dropped
    rng = random.Random(16)
    for length, limit in ((12, 0.012), (16, 0.006), (20, 0.002)):
        values = ["".join(rng.choice(AN) for _ in range(length)) for _ in range(5000)]
        rate = sum(filters.looks_like_code(v) for v in values) / len(values)
        assert rate <= limit, (length, rate)


@pytest.mark.parametrize("name", [
    "SeAssignPrimaryTokenPrivilege", "ed25519.Ed25519PrivateKey", "x25519.X25519PrivateKey",
    "CohereV2ChatResponseUsageTokens", "InvalidatableOAuthTokenStore", "tokens.cache_creation_5m_input_tokens",
    "_jwt_project_obj.project_alias", "AzureKeyVaultSettingsSource",
])
def test_names_still_read_as_names(name):
    assert filters.looks_like_code(name)


def test_go_test_tables_are_read_without_go():
    """The reader bench_recall.py uses on TruffleHog's `*_test.go` files, on a table written here."""
    key = fake_secret("github-token", seed=1)
    other = fake_secret("slack-token", seed=2)
    src = f'''package x

var (
	validPattern = "{key}"
	keyword      = "github"
)

func TestX_Pattern(t *testing.T) {{
	const bare = `{other}`
	tests := []struct {{
		name  string
		input string
		want  []string
	}}{{
		{{
			name:  "sprintf",
			input: fmt.Sprintf("%s token = '%s'", keyword, validPattern),
			want:  []string{{validPattern}},
		}},
		{{
			name: "concatenated raw string",
			input: `config:
  token: "` + bare + `"`,
			want: []string{{bare, "x" + "y"}},
		}},
		{{
			name:  "invalid",
			input: "token = \\"abc\\tdef\\"",
			want:  nil,
		}},
		{{
			name:  "unknown name is skipped, not guessed",
			input: somethingElse(),
			want:  []string{{}},
		}},
	}}
}}
'''
    cases, skipped = parse_cases(src, "x_test.go")
    assert skipped == 1
    assert [(c.name, c.input, c.want) for c in cases] == [
        ("sprintf", f"github token = '{key}'", [key]),
        ("concatenated raw string", f'config:\n  token: "{other}"', [other, "xy"]),
        ("invalid", 'token = "abc\tdef"', []),
    ]


def test_gitleaks_example_lists_are_read_without_go():
    """The reader `bench_recall.py --gitleaks-rules` uses on gitleaks' rule files, on a file written here."""
    from jupyter_securellm.testing.gocases import parse_example_lists, sample_templates

    key = fake_secret("slack-token", seed=4)
    other = fake_secret("github-token", seed=5)
    src = f'''package rules

func SlackBotToken() *config.Rule {{
	r := config.Rule{{RuleID: "slack-bot-token"}}
	tps := utils.GenerateSampleSecrets("bot", "{key}")
	tps = append(tps,
		// a comment between elements
		`"bot_token1": "{other}"`,
		utils.GenerateSampleSecret("bot", secrets.NewSecret(`xoxb-[0-9]{{10}}`)),
	)
	fps := []string{{
		"xoxb-...",
		`token: ${{SLACK}}`,
	}}
	return utils.Validate(r, tps, fps)
}}
'''
    (group,) = parse_example_lists(src)
    assert group.func == "SlackBotToken"
    assert group.tps == [("sample", "bot", key, True), f'"bot_token1": "{other}"']
    assert group.fps == ["xoxb-...", "token: ${SLACK}"]
    assert group.skipped == 1  # the secret generated from a regex by Go code

    generate = '''func GenerateSampleSecrets(identifier string, secret string) []string {
	samples := map[string]string{
		"ini - quoted1": "{i}Token=\\"{s}\\"",
		"go - backticks": "{i}Token := `{s}`",
	}
	replacer := strings.NewReplacer("{i}", identifier)
'''
    assert sample_templates(generate) == ['{i}Token="{s}"', "{i}Token := `{s}`"]


def test_bench_recall_reports_recall_with_and_without_documented_exclusions(monkeypatch):
    """bench_recall.py's two recall figures: raw, and with values our filters leave alone on purpose left out."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    import bench_recall as br
    from jupyter_securellm.testing.gocases import GoCase

    real = fake_secret("github-token", seed=7)
    masked = "hvb." + "a" * 150  # a run of one character: a placeholder
    url = "ftp://username:password@ftp.internal"  # a documentation password
    tele = _rand(string.digits, 9) + ":B" + _rand(AN, 34)
    texts = [(f"token = {real}", real, "github", ("github-token",), "whole"),
             (f"VAULT_TOKEN={masked}", masked, "hashicorpvault", ("vault-token",), "whole"),
             (f"see {url}", "password", "ftp", ("url-password",), "url"),
             (f"bot '{tele}'", tele, "telegrambottoken", ("telegram-bot-token",), "whole")]
    items = []
    for text, secret, det, rules, how in texts:
        a = text.find(secret)
        it = br.Labelled(GoCase("x_test.go", det, text, [secret]), det, rules, spans=[(a, a + len(secret))])
        br._mark_exclusions([it], url_parts=how == "url")
        items.append(it)
    assert [bool(it.excluded_spans) for it in items] == [False, True, True, False]
    found = [[(i.spans[0][0], i.spans[0][1], i.rules[0])] if n == 0 else [] for n, i in enumerate(items)]
    r = br.score(items, lambda i: found[i])
    assert (r["labelled"], r["caught"], r["documented_exclusions"]) == (4, 1, 2)
    assert r["recall"] == 0.25 and r["recall_without_exclusions"] == 0.5
    # the misses say why when they are documented exclusions
    assert sum(len(m) == 3 for m in r["misses"]) == 2
