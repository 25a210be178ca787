"""A labelled detection corpus, generated at run time (so no key-shaped literal is ever committed).

Positives: every rule's true-positive examples, filled with fresh random characters, placed in the
contexts secrets really leak from (notebook JSON, logs, JSON and YAML config, .env files, tracebacks,
Python code). Negatives: every rule's false-positive examples plus hard negatives that fool naive
scanners (UUIDs, git SHAs, sha256 sums, inline images, npm integrity strings, placeholders, masked keys,
environment lookups). Used by the accuracy test and by benchmarks/bench_detect.py.
"""
from __future__ import annotations

import base64
import json
import random
import string
import uuid
from dataclasses import dataclass, field

from jupyter_securellm.detect.rules import Rule, default_rules, expand_template


@dataclass
class Sample:
    text: str
    secrets: list[tuple[int, int]] = field(default_factory=list)  # spans of the true secrets
    rule_id: str | None = None
    context: str = ""


def _notebook(line: str) -> str:
    cell = {"cell_type": "code", "execution_count": 3, "id": "a1b2c3", "metadata": {}, "outputs": [],
            "source": ["import os\n", line + "\n", "print('ok')"]}
    return json.dumps(cell, indent=1)


CONTEXTS = {
    "plain": lambda line: line,
    "log": lambda line: f"2026-11-28 10:00:01,532 INFO [worker-3] request handled: {line}",
    "traceback": lambda line: (
        "Traceback (most recent call last):\n  File \"/srv/app/client.py\", line 88, in call\n"
        f"    {line}\nValueError: upstream rejected the request"
    ),
    "json": lambda line: json.dumps({"config": {"entry": line, "retries": 3}}),
    "yaml": lambda line: f"service:\n  name: ingest\n  env:\n    - {line}\n  replicas: 2",
    "notebook": _notebook,
    "python": lambda line: f"def connect():\n    {line}\n    return client",
}


def _secret_of(rule: Rule, example: str) -> str | None:
    m = rule.regex.search(example)
    if not m:
        return None
    s, e = rule.secret_span(m)
    return example[s:e]


def positives(rng: random.Random, rules=None) -> list[Sample]:
    """Each rule's true-positive examples in each context. An example may hold more than one secret (an AWS
    access key id beside its secret key): what the other provider rules' patterns match in it is labelled
    secret too, so a finding there is not counted as a false alarm."""
    rules = tuple(rules or default_rules())
    out = []
    for rule in rules:
        for tp in rule.tp:
            for cname, wrap in CONTEXTS.items():
                line = expand_template(tp, rng)
                secret = _secret_of(rule, line)
                if secret is None:
                    continue
                text = wrap(line)
                escape = cname in ("json", "notebook")  # JSON contexts escape the line
                spans = _locate(text, secret, escape)
                if not spans:
                    continue
                for other in rules:
                    extra = _secret_of(other, line) if other is not rule and not other.generic else None
                    for a, b in _locate(text, extra, escape) if extra else ():
                        if not any(a < e and s < b for s, e in spans):
                            spans.append((a, b))
                out.append(Sample(text, sorted(spans), rule.id, cname))
    return out


def _locate(text: str, secret: str, escape: bool) -> list[tuple[int, int]]:
    """The first place `secret` occurs in `text` (as it appears after JSON escaping, for JSON contexts)."""
    if escape:
        secret = json.dumps(secret)[1:-1]
    start = text.find(secret)
    return [(start, start + len(secret))] if start >= 0 else []


def _rand(rng: random.Random, chars: str, n: int) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


def hard_negatives(rng: random.Random, rules=None) -> list[Sample]:
    hexd = "0123456789abcdef"
    b64 = string.ascii_letters + string.digits + "+/"
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + rng.randbytes(3000)).decode()
    lines = [
        f"run_id = '{uuid.UUID(int=rng.getrandbits(128))}'",
        f"request_token_id: {uuid.UUID(int=rng.getrandbits(128))}",
        f"commit {_rand(rng, hexd, 40)}",
        f"git_sha = \"{_rand(rng, hexd, 40)}\"",
        f"sha256_checksum = \"{_rand(rng, hexd, 64)}\"",
        f"token_hash: {_rand(rng, hexd, 64)}",
        f"--hash=sha256:{_rand(rng, hexd, 64)}",
        f"image: registry.local/app@sha256:{_rand(rng, hexd, 64)}",
        f'"integrity": "sha512-{_rand(rng, b64, 86)}=="',
        f'<img src="data:image/png;base64,{png[:600]}">',
        json.dumps({"output_type": "display_data", "data": {"image/png": png}, "metadata": {}}),
        'OPENAI_API_KEY = os.environ["OPENAI_API_KEY"]',
        "api_key = os.getenv('ANTHROPIC_API_KEY')",
        "api_key = userdata.get('GEMINI_API_KEY')",
        'token = dbutils.secrets.get(scope="prod", key="hf-token")',
        "api_key=getpass.getpass('API key: ')",
        "OPENAI_API_KEY=sk-...",
        "ANTHROPIC_API_KEY=<your-anthropic-key>",
        "export GITHUB_TOKEN=${GITHUB_TOKEN}",
        "api_key: '{{ secrets.OPENAI_API_KEY }}'",
        "api_key = 'sk-proj-****abcd'",
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "password: xxxxxxxxxxxxxxxx",
        "max_tokens: 4096",
        "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')",
        "secret_name = 'prod/warehouse/readonly-credentials'",
        "SECRET_KEY = get_random_secret_key()",
        "access_key_id_field = settings.AWS_ACCESS_KEY_ID_FIELD_NAME",
        "color: #a1b2c3; background: #ffeedd",
        "https://docs.example.com/guide/authentication?section=api-keys#rotate",
        "postgresql://localhost:5432/analytics",
        "Bearer token authentication is described in RFC6750",
        f"trace_id={_rand(rng, hexd, 32)} span_id={_rand(rng, hexd, 16)}",
        "model = 'gpt-4o-mini'; temperature = 0.2",
        f"cache_key = 'embeddings:{_rand(rng, hexd, 12)}:v2'",
        "lookup_token_type: bearer",
        "cell_id: 5e0f2b7c-91d3-4c1f-8e47-3f0a9c6d2b18",
    ]
    out = [Sample(ctx(line), [], None, cname) for line in lines for cname, ctx in CONTEXTS.items()]
    for rule in rules or default_rules():
        out.extend(Sample(fp, [], None, "fp-example") for fp in rule.fp)
    return out


def labelled_corpus(seed: int = 0) -> list[Sample]:
    rng = random.Random(seed)
    return positives(rng) + hard_negatives(rng)


_NOISE_LINES = [
    "2026-11-28 10:00:{s:02d},{ms:03d} INFO [{w}] GET /api/v1/items?page={n} 200 {ms}ms",
    "2026-11-28 10:00:{s:02d},{ms:03d} DEBUG [{w}] cache miss key=items:{n} ttl=300",
    "    at com.example.Service.handle(Service.java:{n})",
    '  "execution_count": {n},',
    "epoch {n}: loss=0.{ms} accuracy=0.9{s} lr=0.001",
    "df = pd.read_parquet('s3://bucket/data/part-{n:05d}.parquet')",
    "{n},{ms},alpha,beta,{s}.5,True,2026-11-{s:02d}",
    "INFO: Started server process [{n}] on http://127.0.0.1:{ms}",
    '    "text/plain": ["<Figure size 640x480 with {s} Axes>"]',
    "for i in range({n}): total += values[i] * weights[i]",
    "request_id={u} user=analyst-{s} status=ok tokens_used={n}",
]


def noisy_text(size: int, seed: int = 1, secret_every: int = 2000) -> tuple[str, int]:
    """~`size` characters of realistic logs/notebook text with a generated secret every `secret_every` lines.

    Returns (text, number of planted secrets).
    """
    rng = random.Random(seed)
    pos = positives(rng)
    parts = []
    total = 0
    planted = 0
    i = 0
    while total < size:
        i += 1
        if i % secret_every == 0:
            line = pos[planted % len(pos)].text
            planted += 1
        else:
            line = rng.choice(_NOISE_LINES).format(
                s=rng.randrange(60), ms=rng.randrange(1000), n=rng.randrange(100000),
                w=f"worker-{rng.randrange(8)}", u=uuid.UUID(int=rng.getrandbits(128)),
            )
        parts.append(line)
        total += len(line) + 1
    return "\n".join(parts) + "\n", planted


def score(samples: list[Sample], find) -> dict:
    """Recall/precision of `find(text) -> list[(start, end)]` on labelled samples.

    A true secret counts as found when some reported span overlaps it; a reported span that overlaps no
    true secret is a false positive.
    """
    tp = fn = fp = 0
    for s in samples:
        spans = find(s.text)
        for a, b in s.secrets:
            if any(x < b and a < y for x, y in spans):
                tp += 1
            else:
                fn += 1
        for x, y in spans:
            if not any(x < b and a < y for a, b in s.secrets):
                fp += 1
    recall = tp / (tp + fn) if tp + fn else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    return {"tp": tp, "fn": fn, "fp": fp, "recall": recall, "precision": precision}
