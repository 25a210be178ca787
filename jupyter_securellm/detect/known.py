"""Known secrets: values registered at run time (a key read from Vault, a password from `secrets.get`).

A secret leaks in whatever form code prints it, so each value expands into the encodings people print:
raw, base64 and base64url at all three byte alignments, hex in both cases, URL-encoding, JSON and Python
string escaping (once and twice), reversed, any piece of 19+ characters of a secret of 24+; and, for values of 12+ characters, the raw value with separators
(whitespace, zero-width characters, ANSI colour codes, the quotes and commas of a printed `list(secret)`)
between its characters.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse

from .lazy_regex import LazyRegex

#: Registering a shorter value would redact ordinary words; refuse it loudly instead.
MIN_SECRET_LENGTH = 6
#: Encoded forms shorter than this are not matched (too many coincidental hits).
MIN_VARIANT_LENGTH = 8
#: Separated forms are only built for values at least this long.
MIN_SEPARATED_LENGTH = 12
#: A piece of a long secret is still a leak (a key handed out in halves, a truncated key): every
#: FRAGMENT_LENGTH-character window at FRAGMENT_STEP is a known form of secrets this long or longer, so any
#: piece of FRAGMENT_LENGTH + FRAGMENT_STEP - 1 characters is caught (at most FRAGMENT_STEP - 1 characters
#: at its edges stay visible).
FRAGMENT_MIN_SECRET = 24
FRAGMENT_LENGTH = 16
FRAGMENT_STEP = 4

RULE_ID = "known-secret"

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_ANSI = r"\x1b\[[0-9;]{0,16}m"
#: Between the items of `list(secret)` as Python or JSON prints it (`'s', 'k'`, `"s", "k"`, one per line
#: when IPython wraps it), and JSON-escaped once or twice more inside a notebook file or an API body
#: (`\\"s\\", \\"k\\"`, `'s',\\n 'k'`): escaped quotes, and escaped line breaks as the whitespace.
_LIST_ITEM_GAP = r"""\\{0,3}['"],(?:\s|\\{1,2}[nrt]){0,8}\\{0,3}['"]"""
#: One separator unit between characters, and how many may stand between two characters.
SEPARATOR = rf"(?:\s|[{ZERO_WIDTH}]|{_ANSI}|{_LIST_ITEM_GAP})"
SEPARATOR_REPEAT = 4
#: The longest separator unit: a list item gap at its widest (3 + 1 + 1 + 8 * 3 + 3 + 1), longer than an
#: ANSI code (ESC [ 16 digits m = 20).
SEPARATOR_MAX_UNIT = 33


def _base64_cores(raw: bytes, alphabet: str) -> list[str]:
    """Substrings that appear whenever `raw` is base64-encoded inside a longer byte string.

    At alignment a (a bytes precede the secret), output character i depends only on secret bits when
    6i >= 8a and 6i + 6 <= 8a + 8n.
    """
    cores = []
    n = len(raw)
    for a in range(3):
        enc = base64.b64encode(b"\0" * a + raw).decode("ascii")
        if alphabet == "url":
            enc = enc.translate(str.maketrans("+/", "-_"))
        first = -(-8 * a // 6)
        last = (8 * a + 8 * n) // 6
        cores.append(enc[first:last])
    return cores


def variants(secret: str, *, with_fragments: bool = True) -> set[str]:
    """Every literal form of `secret` that should be caught (see module docstring)."""
    raw = secret.encode("utf-8", "surrogatepass")
    forms = {secret, secret[::-1]}
    forms.update(_base64_cores(raw, "std"))
    forms.update(_base64_cores(raw, "url"))
    hexed = binascii.hexlify(raw).decode("ascii")
    forms.update({hexed, hexed.upper()})
    for quoted in (urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
        forms.update({quoted, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted)})
    once = json.dumps(secret)[1:-1]
    forms.update({once, json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(once)[1:-1]})
    forms.add(repr(secret)[1:-1])
    forms.add(secret.encode("unicode_escape").decode("ascii"))
    if with_fragments:
        forms.update(fragments(secret))
    return {f for f in forms if f == secret or len(f) >= MIN_VARIANT_LENGTH}


def fragments(secret: str) -> list[str]:
    """Overlapping windows of a long secret (see FRAGMENT_LENGTH); empty for short ones."""
    if len(secret) < FRAGMENT_MIN_SECRET:
        return []
    starts = list(range(0, len(secret) - FRAGMENT_LENGTH + 1, FRAGMENT_STEP))
    if starts[-1] != len(secret) - FRAGMENT_LENGTH:
        starts.append(len(secret) - FRAGMENT_LENGTH)
    return [secret[i : i + FRAGMENT_LENGTH] for i in starts]


def separated_pattern(secret: str) -> str | None:
    """Python regex for the raw value with up to SEPARATOR_REPEAT separators between characters."""
    if len(secret) < MIN_SEPARATED_LENGTH:
        return None
    sep = f"{SEPARATOR}{{0,{SEPARATOR_REPEAT}}}"
    # quotes and backslashes are escaped when a list of characters is printed as JSON or repr
    return sep.join(("\\\\{0,2}" if c in "\"'\\" else "") + re.escape(c) for c in secret)


#: Separated forms are looked for where at least this many characters in a row are each followed by
#: separators (a value of MIN_SEPARATED_LENGTH characters has one fewer gaps than characters).
SEPARATED_GATE = MIN_SEPARATED_LENGTH - 2
SEPARATED_GATE_RE = LazyRegex(rf"(?:.{SEPARATOR}{{1,{SEPARATOR_REPEAT}}}){{{SEPARATED_GATE}}}")
#: Where Hyperscan sends the exact `re` gate (over the one-byte-per-character projection, zero-width and
#: all non-ASCII characters as 0x80): runs of single characters between whitespace, any single character
#: coloured on its own by ANSI codes, any one-character item of a printed list. Cheaper than the exact
#: gate in Hyperscan, and every exact gate match contains one of them.
SEPARATED_GATE_HS = (
    rb"(?:[^\s\x80][\s\x80]{1,%d}){%d}|\x1b\[[0-9;]{0,16}m[^\x1b]\x1b\[|['\"],(?:\s|\\{1,2}[nrt]){0,8}\\{0,3}['\"][^'\"\\]\\{0,3}['\"],"
    % (SEPARATOR_REPEAT, SEPARATED_GATE)
)
#: the longest text a gate match can span
SEPARATED_GATE_WIDTH = SEPARATED_GATE * (1 + SEPARATOR_REPEAT * SEPARATOR_MAX_UNIT)


def separated_max_width(secret: str) -> int:
    """The longest text the separated pattern of `secret` can match (its characters may be escaped too)."""
    return 3 * len(secret) + (len(secret) - 1) * SEPARATOR_REPEAT * SEPARATOR_MAX_UNIT
