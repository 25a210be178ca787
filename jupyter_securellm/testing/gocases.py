"""Read labelled detector examples out of Go test files (TruffleHog's `*_test.go` pattern tables).

TruffleHog's detector tests hold tables of `{name: ..., input: ..., want: []string{...}}`: an input text
and the credentials its detector must report (`want`; empty or nil for an input that must yield nothing).
This reads those tables without running Go: a small evaluator for the string expressions they use
(literals, `+`, named `const`/`var` strings, `fmt.Sprintf`, `strings.Repeat`). A case whose expression it
cannot evaluate is skipped and counted, never guessed.

Used by `benchmarks/bench_recall.py` on a checkout given on the command line: the examples are read at
run time and never copied into this repository.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<raw>`[^`]*`)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<chr>'(?:[^'\\\n]|\\.)*')
  | (?P<num>[0-9][0-9a-fA-FxX_.]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>:=|\.\.\.|[{}()\[\],:=+;*&<>!.\-/|%^])
    """,
    re.S | re.X,
)


class Unsupported(ValueError):
    """An expression this evaluator does not handle (the case is skipped and counted)."""


@dataclass
class GoCase:
    file: str
    name: str
    input: str
    want: list[str] = field(default_factory=list)


def _tokens(src: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:  # an odd character (a rune outside the token set): keep going
            out.append(("op", src[pos]))
            pos += 1
            continue
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v", "0": "\0"}


def _unquote(tok: str) -> str:
    if tok.startswith("`"):
        return tok[1:-1].replace("\r", "")
    body = tok[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = body[i + 1]
        if n == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        elif n == "u":
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        elif n == "U":
            out.append(chr(int(body[i + 2 : i + 10], 16)))
            i += 10
        elif n in "01234567" and i + 3 < len(body) + 1 and body[i + 1 : i + 4].isdigit():
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(_ESCAPES.get(n, n))
            i += 2
    return "".join(out)


def _sprintf(fmt: str, args: list) -> str:
    it = iter(args)

    def sub(m: re.Match) -> str:
        verb = m.group(2)
        if verb == "%":
            return "%"
        v = next(it)
        if verb == "q":
            return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        return str(v)

    return re.sub(r"%([-+# 0-9.]*)([svdqx%])", sub, fmt)


class _Parser:
    def __init__(self, toks, env):
        self.t = toks
        self.i = 0
        self.env = env

    def peek(self, k=0):
        j = self.i + k
        return self.t[j] if j < len(self.t) else ("eof", "")

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, value):
        kind, v = self.take()
        if v != value:
            raise Unsupported(f"expected {value!r}, got {v!r}")

    def expr(self):
        val = self.term()
        while self.peek()[1] == "+":
            self.take()
            rhs = self.term()
            if isinstance(val, str) != isinstance(rhs, str):
                raise Unsupported("mixed + operands")
            val = val + rhs
        return val

    def term(self):
        kind, v = self.take()
        if kind in ("str", "raw"):
            return _unquote(v)
        if kind == "num":
            try:
                return int(v, 0)
            except ValueError:
                raise Unsupported(v) from None
        if kind == "ident":
            if v in ("fmt.Sprintf", "strings.Repeat", "string"):
                self.expect("(")
                args = self.args()
                if v == "fmt.Sprintf":
                    return _sprintf(args[0], args[1:])
                if v == "string":
                    return args[0] if isinstance(args[0], str) else bytes(args[0]).decode()
                return args[0] * args[1]
            if v == "nil":
                return None
            if v in self.env:
                return self.env[v]
            raise Unsupported(f"unknown name {v}")
        if v == "[" and self.peek()[1] == "]":
            self.take()
            kind2, typ = self.take()
            if typ not in ("string", "byte"):
                raise Unsupported(f"[]{typ}")
            if self.peek()[1] == "(":  # []byte("...")
                self.take()
                args = self.args()
                return args[0]
            self.expect("{")
            items = []
            while self.peek()[1] != "}":
                items.append(self.expr())
                if self.peek()[1] == ",":
                    self.take()
            self.take()
            return items
        if v == "(":
            val = self.expr()
            self.expect(")")
            return val
        raise Unsupported(f"token {v!r}")

    def args(self):
        out = []
        while self.peek()[1] != ")":
            out.append(self.expr())
            if self.peek()[1] == ",":
                self.take()
        self.take()
        return out


def _constants(toks) -> dict:
    """Every `name = <string expr>` / `name := <string expr>` in the file, evaluated in order."""
    env: dict = {}
    for i, (kind, v) in enumerate(toks):
        if kind != "ident" or i + 1 >= len(toks) or toks[i + 1][1] not in ("=", ":="):
            continue
        if i > 0 and toks[i - 1][1] in (".", ","):
            continue
        p = _Parser(toks, env)
        p.i = i + 2
        try:
            val = p.expr()
        except (Unsupported, StopIteration, IndexError, ValueError):
            continue
        if isinstance(val, (str, int)) and p.peek()[1] in (";", ")", "}", "eof", "ident") or (
            isinstance(val, (str, int)) and p.peek()[0] in ("ident", "str", "raw")
        ):
            env.setdefault(v, val)
    return env


def parse_cases(src: str, file: str = "") -> tuple[list[GoCase], int]:
    """(cases, skipped): every composite literal with `input:` and `want:` keys, evaluated."""
    toks = _tokens(src)
    env = _constants(toks)
    cases: list[GoCase] = []
    skipped = 0
    depth_open: list[int] = []
    for i, (kind, v) in enumerate(toks):
        if v == "{":
            depth_open.append(i)
        elif v == "}" and depth_open:
            start = depth_open.pop()
            fields = _fields(toks, start + 1, i, env)
            if fields is None or "input" not in fields or "want" not in fields:
                continue
            if fields["input"] is Unsupported or fields["want"] is Unsupported:
                skipped += 1
                continue
            want = fields["want"] or []
            if not isinstance(fields["input"], str) or not all(isinstance(w, str) for w in want):
                skipped += 1
                continue
            cases.append(GoCase(file, str(fields.get("name") or ""), fields["input"], list(want)))
    return cases, skipped


def _fields(toks, lo, hi, env):
    """`key: expr` pairs at the top level of toks[lo:hi], or None when it is not such a literal."""
    out = {}
    i = lo
    while i < hi:
        kind, v = toks[i]
        if not (kind == "ident" and i + 1 < hi and toks[i + 1][1] == ":"):
            return out or None
        # find the end of this value: the next top-level comma before hi
        depth = 0
        j = i + 2
        while j < hi:
            t = toks[j][1]
            if t in "([{" and toks[j][0] == "op":
                depth += 1
            elif t in ")]}" and toks[j][0] == "op":
                depth -= 1
            elif t == "," and depth == 0:
                break
            j += 1
        if v in ("name", "input", "want"):
            p = _Parser(toks[i + 2 : j], env)
            try:
                val = p.expr()
                if p.i != j - (i + 2):
                    raise Unsupported("trailing tokens")
            except (Unsupported, StopIteration, IndexError, ValueError, TypeError):
                val = Unsupported
            out[v] = val
        else:
            out[v] = None
        i = j + 1
    return out


@dataclass
class GoList:
    """The string examples of one Go function's `tps` / `fps` lists (gitleaks' rule files)."""

    func: str
    tps: list = field(default_factory=list)  # str (a whole example) or ("sample", identifier, secret)
    fps: list = field(default_factory=list)
    skipped: int = 0  # elements generated at run time by Go code (a random secret from a regex): not evaluable


_SAMPLE_CALLS = ("utils.GenerateSampleSecrets", "utils.GenerateSampleSecret")


def parse_example_lists(src: str) -> list[GoList]:
    """Every function's `tps`/`fps` assignments: `[]string{...}`, `append(tps, ...)`, and
    `utils.GenerateSampleSecret(s)(identifier, "<literal secret>")` calls, which gitleaks expands into contexts."""
    toks = _tokens(src)
    env = _constants(toks)
    out: list[GoList] = []
    cur: GoList | None = None
    i = 0
    while i < len(toks):
        kind, v = toks[i]
        if kind == "ident" and v == "func" and i + 1 < len(toks) and toks[i + 1][0] == "ident":
            cur = GoList(toks[i + 1][1])
            out.append(cur)
        elif cur and kind == "ident" and v in ("tps", "fps") and i + 1 < len(toks) and toks[i + 1][1] in ("=", ":="):
            end = _statement_end(toks, i + 2)
            items, skipped = _list_items(toks[i + 2 : end], env)
            getattr(cur, v).extend(items)
            cur.skipped += skipped
            i = end
            continue
        i += 1
    return [g for g in out if g.tps or g.fps or g.skipped]


def _statement_end(toks, j):
    """End of the expression starting at j: balanced brackets, then the first token that cannot continue it."""
    depth = 0
    while j < len(toks):
        t = toks[j][1]
        if toks[j][0] == "op" and t in "([{":
            depth += 1
        elif toks[j][0] == "op" and t in ")]}":
            depth -= 1
            if depth < 0:
                return j
            cont = j + 1 < len(toks) and (
                toks[j + 1][1] in (".", "...", "+", "(", "[", "{") or (t == "]" and toks[j + 1][0] == "ident")
            )
            if depth == 0 and not cont:
                return j + 1
        elif depth == 0 and toks[j][0] in ("str", "raw") and (j + 1 >= len(toks) or toks[j + 1][1] != "+"):
            return j + 1
        j += 1
    return j


def _list_items(toks, env):
    """(items, skipped) of `[]string{a, b}`, `append(x, a, b)`, `append(x, []string{...}...)`, or a sample call."""
    items, skipped = [], 0
    if not toks:
        return items, 0
    head = toks[0][1]
    if head in _SAMPLE_CALLS:
        return _sample_call(toks, env)
    if head == "append" or head == "[":
        lo = 2 if head == "append" else 4  # past `append(` / `[]string{`
        if head == "append":
            # skip the first argument (the list appended to)
            k = lo
            while k < len(toks) and toks[k][1] != ",":
                k += 1
            lo = k + 1
        for elem in _split_top(toks[lo:-1]):
            if not elem:
                continue
            if elem[0][1] in ("[", "append") or elem[0][1] in _SAMPLE_CALLS:
                sub = elem[:-1] if elem[-1][1] == "..." else elem
                got, sk = _list_items(sub, env)
                items += got
                skipped += sk
                continue
            p = _Parser(elem, env)
            try:
                val = p.expr()
                if p.i != len(elem) or not isinstance(val, str):
                    raise Unsupported("not a plain string")
                items.append(val)
            except (Unsupported, StopIteration, IndexError, ValueError, TypeError):
                skipped += 1
        return items, skipped
    return items, 1


def _sample_call(toks, env):
    args = _split_top(toks[2:-1])
    vals = []
    for a in args:
        p = _Parser(a, env)
        try:
            val = p.expr()
            if p.i != len(a) or not isinstance(val, str):
                raise Unsupported("generated")
            vals.append(val)
        except (Unsupported, StopIteration, IndexError, ValueError, TypeError):
            return [], 1
    if len(vals) != 2:
        return [], 1
    return [("sample", vals[0], vals[1], toks[0][1].endswith("Secrets"))], 0


def _split_top(toks):
    parts, cur, depth = [], [], 0
    for t in toks:
        if t[0] == "op" and t[1] in "([{":
            depth += 1
        elif t[0] == "op" and t[1] in ")]}":
            depth -= 1
        if t[1] == "," and depth == 0 and t[0] == "op":
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        parts.append(cur)
    return parts


def sample_templates(generate_src: str) -> list[str]:
    """gitleaks' own contexts for `GenerateSampleSecrets` (the `samples` map in cmd/generate/config/utils/generate.go),
    read from its source: templates with `{i}` (identifier), `{I}` (upper-cased) and `{s}` (the secret)."""
    start = generate_src.index("func GenerateSampleSecrets")
    body = generate_src[start : generate_src.index("replacer", start)]
    toks = _tokens(body)
    out = []
    for k in range(len(toks) - 2):
        if toks[k][0] in ("str", "raw") and toks[k + 1][1] == ":" and toks[k + 2][0] in ("str", "raw"):
            out.append(_unquote(toks[k + 2][1]))
    return out
