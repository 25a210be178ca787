"""False-positive filters: small pure functions, each answering "is this candidate not a credential?".

They run only on candidates a rule already matched, so they can afford to be precise rather than fast.
"""
from __future__ import annotations

import math
import re
from collections import Counter

from .lazy_regex import LazyRegex

_UUID = LazyRegex(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = LazyRegex(r"[0-9a-fA-F]+")
_HASH_LENGTHS = {32, 40, 56, 64, 96, 128}
_HASH_CONTEXT = LazyRegex(r"(?i)hash|sha\d*|md5|digest|checksum|etag|commit|revision|fingerprint|integrity|nonce_hash")
_INTEGRITY = LazyRegex(r"sha(?:1|224|256|384|512)-")
#: One part of an identifier: words of 2+ lowercase letters (optionally capitalised) and acronyms of 2+
#: capitals (`SecureLLM`, `getHTTPResponse`, `API`). Random mixed-case text breaks this shape at once.
_SEGMENT = LazyRegex(r"[a-z]*|[A-Z]*|(?:[A-Z]?[a-z]{2,}|[A-Z]{2,}(?![a-z]))+")
_VERSION_SUFFIX = LazyRegex(r"(?<=[A-Za-z])[0-9]{1,2}$")
_SEPARATORS = LazyRegex(r"[._\-/]")
_REPEATED = LazyRegex(r"(.)\1{7,}")
_PLACEHOLDER_MARKERS = ("...", "***", "\u2022\u2022", "xxxx", "XXXX", "____")
_PLACEHOLDER_PREFIXES = ("${", "{{", "<", "%(", "%s", "{")
_ENV_REFERENCE = LazyRegex(r"\$[A-Za-z_][A-Za-z0-9_]*")
_CODE_ENV_REFERENCE = LazyRegex(r"(?:os\.environ|env|environ)[/.:\[]")
_PLACEHOLDER_WORDS = LazyRegex(
    # a placeholder word standing at either end of the value or next to a separator: in random text the
    # same letters appear by chance, glued inside a run of alphanumerics
    r"(?i)(?:^|(?<=[^A-Za-z0-9]))(?:your|example|placeholder|changeme|change[_\-]me|dummy|redacted|insert|"
    r"replace[_\-]?me|fill[_\-]?in|goes[_\-]?here|here)(?=[^A-Za-z0-9]|$)|"
    r"^(?:your|example|placeholder|dummy|insert|replace)|(?:here|example(?:key)?|placeholder)$|[<>]"
)
#: Any rule: a value ending in "here" or "placeholder" (a random key ends so about once in a million).
_ENDS_AS_PLACEHOLDER = LazyRegex(r"(?i)(?:here|placeholder)$")
#: Values that documentation uses verbatim as "the password".
_LEET = str.maketrans("@0134$5!7", "aoieassit")
_COMMON_PLACEHOLDERS = frozenset(
    "password pass passwd pwd secret secrets token apikey api_key key changeme admin root user test testing "
    "letmein default mypassword yourpassword p@ssw0rd foobar foo bar none null undefined tiger "
    "sensitive iamsensitive".split()
)


def shannon_entropy(value: str) -> float:
    """Bits per character; random keys score high, words and repeated characters low."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def entropy_threshold(base: float, value: str) -> float:
    """`base`, lowered where the value's alphabet or length caps what even random text can reach.

    Random hex tops out at 4 bits per character and a 16-character string at 4 bits, so a fixed bar
    would reject real hex keys and short tokens by chance.
    """
    cap = math.log2(len(value)) - 0.7 if value else 0.0
    if _HEX.fullmatch(value):
        cap = min(cap, 2.8)
    return min(base, cap)


def char_classes(value: str) -> int:
    """How many of lowercase, uppercase and digits appear."""
    return (
        any(c.islower() for c in value) + any(c.isupper() for c in value) + any(c.isdigit() for c in value)
    )


def is_placeholder(value: str, *, loose_shape: bool = False) -> bool:
    """Documentation stand-ins: `sk-...`, `YOUR_API_KEY`, `<key>`, `${VAR}`, `{{ secrets.X }}`, masked keys.

    Masks (`...`, `***`, runs of one character) are checked always. The word and prefix checks run only for
    rules whose shape alone proves little (`loose_shape`): in a 100-character random key, "your" appears by
    chance often enough to cost recall.
    """
    if any(m in value for m in _PLACEHOLDER_MARKERS) or _REPEATED.search(value):
        return True
    if "EXAMPLE" in value:  # AWS and others mark documentation values so (`AKIA...EXAMPLE`, `GpgauEXAMPLE...`)
        return True
    if _ENDS_AS_PLACEHOLDER.search(value):  # `xoxe.xoxp-1-SlackAppConfigurationAccessTokenHere`
        return True
    if not loose_shape:
        return False
    if value.lower() in _COMMON_PLACEHOLDERS or value.startswith(_PLACEHOLDER_PREFIXES):
        return True
    if value.lower().translate(_LEET).rstrip("0123456789") in _COMMON_PLACEHOLDERS:  # `password1`, `P@ssw0rd`
        return True
    if _CODE_ENV_REFERENCE.match(value):  # litellm's `os.environ/E2B_API_KEY`
        return True
    if _ENV_REFERENCE.fullmatch(value):
        return True
    return bool(_PLACEHOLDER_WORDS.search(value))


_ID_GROUP = LazyRegex(r"(?<=-)[0-9]+-")


def without_id_groups(value: str) -> str:
    """`xoxa-2-511111111-31111111111-e039...` -> `xoxa-e039...`: the numeric ids taken out, for the mask check.

    A run of one character is a mask in random text, but in a number it is just a number: Slack's team
    and user ids are digits, and 511111111 is as valid an id as any.
    """
    return _ID_GROUP.sub("", value)


def typed_ids(value: str, min_digits: int = 1) -> bool:
    """`xoxp-1234-1234-1234-...`: the same id typed in every id slot is a placeholder (team and user ids differ)."""
    ids = [i for i in _ID_GROUP.findall(value) if len(i) > min_digits]
    return len(ids) >= 2 and len(set(ids)) == 1


_SEQUENCES = ("0123456789012345678901", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def typed_sequence(value: str, run: int = 8) -> bool:
    """`dapi123456789012345678...`, `...-klmnopqrstuvwx-...`: 8+ characters typed in order along the keyboard's
    digits or the alphabet. Random text holds such a run about once in 10^13 positions; people typing a
    stand-in hold it all the time. (For generic rules: a provider's own test keys are typed so too.)"""
    for i in range(len(value) - run + 1):
        piece = value[i : i + run]
        if any(piece in seq for seq in _SEQUENCES):
            return True
    return False


_MASK_AFTER = ("...", "***", "##", "\u2022", "\u2026", "xxxx", "XXXX")


def followed_by_mask(text: str, end: int) -> bool:
    """`xoxp-5723...-##########`, `sk-proj-abc***`: a key whose rest is masked is a documented or redacted key."""
    return text.startswith(_MASK_AFTER, end)


_NAME = LazyRegex(r"[A-Za-z0-9_.-]+")
#: The last word of a name whose value is not secret: an id, a name, an address, a version, a type, a size.
_NOT_SECRET_LAST_WORD = frozenset(
    "id ids name names version url uri path file type header prefix suffix length len count size".split()
)


def is_non_secret_key(context: str) -> bool:
    """`credentialId`, `secret_name`, `token_url`, `publicToken`: names that say their value is not a secret."""
    m = _NAME.match(context)
    if not m:
        return False
    name = m.group()
    lowered = name.lower()
    if "public" in lowered or "publishable" in lowered:
        return True
    if "csrf" in lowered or "xsrf" in lowered:  # anti-forgery tokens are printed into every page served
        return True
    words = _CODE_WORD.findall(name)
    return bool(words) and words[-1].lower() in _NOT_SECRET_LAST_WORD


def is_uuid(value: str) -> bool:
    return bool(_UUID.fullmatch(value))


def looks_like_hash(value: str, context: str) -> bool:
    """Hex digests (git SHAs, sha256 sums, etags) named as such in their context."""
    return len(value) in _HASH_LENGTHS and bool(_HEX.fullmatch(value)) and bool(_HASH_CONTEXT.search(context))


def is_integrity_string(text: str, start: int) -> bool:
    """Subresource-integrity / npm lockfile values: `sha512-<base64>`."""
    return bool(_INTEGRITY.match(text, max(0, start - 7), start)) or bool(_INTEGRITY.match(text, start))


_LOWERCASE_PATH = LazyRegex(r"(?:/[a-z0-9_.~-]+){2,}/?")


def looks_like_path(value: str) -> bool:
    """`/apis/authentication.k8s.io/v1/tokenreviews`: an absolute, lower-case path, not a credential."""
    return bool(_LOWERCASE_PATH.fullmatch(value))


#: A word in a name, a little looser than `_SEGMENT`: `Ed` of Ed25519, a final capital (`TokenW`).
_CODE_WORD = LazyRegex(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
#: Letter pairs that (almost) never occur inside words: fewer than 40 times among the 4.6 million letter pairs
#: of the words in CPython 3.11's standard library sources (names, comments and docstrings; its tests excluded;
#: words split at capitals, lower-cased). Random letters land on one about one pair in five.
_RARE_PAIRS = frozenset(
    "bk bq bv bw bx cj cx cz dz fj fk fv fx fz gj gk gq gx gy hb hg hj hq hv hw hx hz ih ij iw iy jb jc "
    "jd jf jg jh jj jl jm jn jq jr jt jv jw jx jy jz kb kj kk km kv kx kz lj lq lx mj mq mv mx nx oq pj "
    "px pz qa qb qc qd qe qf qg qh qi qj qk qm qq qt qv qw qx qy qz rj rq rz sz tj uh uj uq uv uw uy uz "
    "vd vg vj vk vl vq vv vx vy vz wg wj wk wm wv wy wz xg xj xk xn xq xv xw yj yk yq yx zb zc zd zg zj "
    "zk zq zr zs zt zu zv zw zx zz"
    .split()
)


def reads_as_words(value: str) -> bool:
    """`SeAssignPrimaryTokenPrivilege` reads as words; `mxyHugAwiKec`, cut at its capitals the same way, does not.

    Names are made of words (and abbreviations), whose letter pairs are ordinary ones; random text is not.
    At most one pair in eight (at least one pair: `azure`, `objc`) may be rare.
    """
    pairs = rare = 0
    for word in _CODE_WORD.findall(value):
        word = word.lower()
        for a, b in zip(word, word[1:]):
            pairs += 1
            rare += a + b in _RARE_PAIRS
    return rare <= max(1, pairs * 0.12)


def looks_like_identifier(value: str) -> bool:
    """`settings.OPENAI_API_KEY`, `get_api_key_from_vault`, `secretKeyFromVault`: code, not a credential.

    No digits, and every part between separators is a lowercase, uppercase or camel-case word. Random
    mixed-case text almost never has that shape.
    """
    # a version suffix (`API_KEY_V2`, `base64`) is allowed; digits anywhere else mean it is not a name
    parts = [_VERSION_SUFFIX.sub("", seg) for seg in _SEPARATORS.split(value)]
    if any(c.isdigit() for seg in parts for c in seg):
        return False
    return all(_SEGMENT.fullmatch(seg) for seg in parts) and reads_as_words(value)


_B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n\r"


def inside_base64_payload(text: str, start: int, lookback: int = 4096) -> bool:
    """True when the candidate sits inside a `data:...;base64,` payload (inline images and files)."""
    before = text[max(0, start - lookback) : start].rstrip(_B64_CHARS)
    return before.endswith(";base64,")


# -- filters found on real text (site-packages: code and docs no one here wrote; see docs/detection.md) --

_CODE_SEPARATORS = LazyRegex(r"[._\-/:=+]")
#: A name's word shape; a lone capital before a capitalised word is a word too (`OAuthToken`, `CohereV2Chat`).
_CODE_SEGMENT = LazyRegex(r"[A-Z]?(?:[A-Z]?[a-z]+|[A-Z]{2,}(?![a-z])|[A-Z](?=[A-Z][a-z]))+[A-Z]?|[A-Z]")
_DIGIT_RUN = LazyRegex(r"[0-9]+")
#: A single letter fused to a number (`x25519`, `H2`, `V2`) names a standard or a version, not a word.
_LETTER_NUMBER = LazyRegex(r"(?<![A-Za-z])[A-Za-z](?=[0-9])")


def looks_like_code(value: str) -> bool:
    """`tokens.cache_creation_5m_input_tokens`, `ed25519.Ed25519PrivateKey`, `MLKEM768X25519PrivateKey`,
    `IPython.core.magics.osm:OSMagics`, `token-counting-2024-11-01`: names, with the digits names carry.

    Every part between separators, cut at its digit runs, must be made of word shapes (see
    `looks_like_identifier`), no part may carry more than two digit runs, and the words must read as words
    (`reads_as_words`): random text scatters digits and mixes case at random, so it fails one or the other.
    (Digit runs cut a part rather than being taken out, so `CohereV2ChatResponse` is `CohereV` and
    `ChatResponse`, and the letters around a digit in random text are not glued into a longer "word".)
    """
    if looks_like_identifier(value):
        return True
    if "(" in value and ")" in value:  # `),$?Re.createElement(`: an expression
        return True
    parts = [p for p in _CODE_SEPARATORS.split(value) if p]
    words: list[str] = []
    for part in parts:
        if len(_DIGIT_RUN.findall(part)) > 2:
            return False
        for piece in _DIGIT_RUN.split(_LETTER_NUMBER.sub("", part)):
            if piece and not _CODE_SEGMENT.fullmatch(piece):
                return False
            words += _CODE_WORD.findall(piece)
    # names are made of words; random text cut at its capitals gives mostly one- and two-letter pieces.
    # One part alone (`SeAssignPrimaryTokenPrivilege`) must look more clearly like words than several.
    if len(parts) >= 2:
        shaped = bool(words) and sum(map(len, words)) >= 3.3 * len(words) and sum(len(w) <= 2 for w in words) * 2 <= len(words)
    else:
        shaped = len(words) >= 3 and sum(map(len, words)) >= 4.0 * len(words) and sum(len(w) <= 2 for w in words) * 3 <= len(words)
    return shaped and reads_as_words(value)


#: `jjwt-jackson-0.11.2`, `botocore-1.34.0`: a name, then a release number with two or three dots.
_VERSIONED_NAME = LazyRegex(r"[A-Za-z][A-Za-z0-9_.-]*[A-Za-z][-_]v?[0-9]{1,4}(?:\.[0-9]{1,6}){1,3}")


def is_versioned_name(value: str) -> bool:
    """A package coordinate or file name ending in a version (`io.jsonwebtoken:jjwt-jackson-0.11.2`):
    random keys do not end in `-<n>.<n>.<n>`."""
    return bool(_VERSIONED_NAME.fullmatch(value))


_TIMESTAMP = LazyRegex(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def is_timestamp(value: str) -> bool:
    """`2016-09-08T21:47:36Z`: a date, not a credential."""
    return bool(_TIMESTAMP.fullmatch(value))


#: Key names of values that are handed back to an API to fetch the next page, not credentials.
_PAGINATION_KEY = LazyRegex(r"(?i)next|continuation|cursor|page|marker|input_token|sync_?token|resume")


def is_pagination_key(key: str) -> bool:
    """`"NextToken": "..."`, `nextContinuationToken`, `page_token`: an opaque cursor, not a secret."""
    return bool(_PAGINATION_KEY.search(key))


_ARN = LazyRegex(r"arn:[a-z0-9-]{1,32}:")


def inside_arn(text: str, start: int) -> bool:
    """`arn:aws:secretsmanager:us-west-2:123456789012:secret:MyDatabaseSecret-a1b2c3` names a secret."""
    i = start
    lo = max(0, start - 200)
    while i > lo and not text[i - 1].isspace() and text[i - 1] not in "\"'`,;([{":
        i -= 1
    return bool(_ARN.match(text, i, start))


#: Documentation marks an example: the word "example", "e.g.", a doctest prompt, printed output.
_DOC_EXAMPLE = LazyRegex(r"(?i)(?<![\w.])(?:for\s+)?examples?(?![\w.])|\be\.g\.|>>>|^\s*#>", re.M)
_DOC_WINDOW = 300


def in_documentation_example(text: str, start: int) -> bool:
    """`Example api_key='...'`, `>>> oauth_token=...`, RFC sample responses under "For example:"."""
    return bool(_DOC_EXAMPLE.search(text, max(0, start - _DOC_WINDOW), start))


def is_documentation_password(password: str, user: str = "") -> bool:
    """URL passwords documentation uses: `scott:tiger`, `user:pass`, `P%40SSWORD`, `a%20secret`, the user's
    own name again. A short lowercase word is not a password anyone would leak from a real system."""
    from urllib.parse import unquote

    value = unquote(password)
    plain = value.lower().translate(_LEET).rstrip("0123456789")
    if plain in _COMMON_PLACEHOLDERS or (user and value == unquote(user)):
        return True
    return bool(re.fullmatch(r"[a-z]{1,10}(?: [a-z]{1,10})?", value))
