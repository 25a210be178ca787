"""`jupyter-securellm policy eval|test` and `jupyter-securellm audit verify|report`.

Exit codes as in the rest of the CLI: 0 pass/allowed/intact, 1 fail/denied/tampered, 2 error.
"""
from __future__ import annotations

import json
import sys

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def add_parsers(sub) -> None:
    pol = sub.add_parser("policy", help="evaluate and test Rego policies (c.SecureLLM.policy_paths)",
                         description="Evaluate a policy decision or run the test_* rules of Rego files.")
    psub = pol.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    ev = psub.add_parser("eval", help="print the decision and reasons for an input document (exit 0 allow, 1 deny)")
    ev.add_argument("--input", "-i", required=True, metavar="FILE", help="the input document as JSON ('-' for stdin)")
    ev.add_argument("--format", "-f", choices=("text", "json"), default="text")
    ev.add_argument("paths", nargs="*", metavar="PATH", help=".rego files or folders (default: the shipped policy)")
    te = psub.add_parser("test", help="run the test_* rules, like opa test (exit 0 pass, 1 fail, 2 error)")
    te.add_argument("paths", nargs="+", metavar="PATH", help=".rego files or folders (tests in *_test.rego)")
    te.add_argument("--run", "-r", metavar="REGEX", help="only tests whose package.rule matches")
    te.add_argument("--verbose", "-v", action="store_true", help="list passing tests too")

    aud = sub.add_parser("audit", help="verify the audit log's hash chain and signatures; summarise it",
                         description="Verify and summarise hash-chained audit logs (rotated files are found "
                                     "next to each PATH).")
    asub = aud.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    ve = asub.add_parser("verify", help="check the chain and checkpoints (exit 0 intact, 1 tampered, 2 unreadable)")
    ve.add_argument("paths", nargs="+", metavar="PATH")
    ve.add_argument("--public-key", metavar="FILE",
                    help="PEM or base64 ed25519 public key(s) that signed the checkpoints (transit export)")
    ve.add_argument("--checkpoints", metavar="FILE", help="checkpoint file (default: <last PATH>.checkpoints)")
    ve.add_argument("--format", "-f", choices=("text", "json"), default="text")
    re_ = asub.add_parser("report", help="calls, tokens, cost, denials and latency (text, json or html)")
    re_.add_argument("paths", nargs="+", metavar="PATH")
    re_.add_argument("--by", choices=("user", "model", "day"), default="user")
    re_.add_argument("--format", "-f", choices=("text", "json", "html"), default="text")
    re_.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")


def run(args) -> int:
    if args.command == "policy":
        return _policy_eval(args) if args.policy_command == "eval" else _policy_test(args)
    return _audit_verify(args) if args.audit_command == "verify" else _audit_report(args)


def _err(msg: str) -> None:
    print(f"jupyter-securellm: error: {msg}", file=sys.stderr)


def _policy_eval(args) -> int:
    from .policy import PolicyEngine

    try:
        raw = sys.stdin.read() if args.input == "-" else open(args.input, encoding="utf-8").read()
        doc = json.loads(raw)
    except (OSError, ValueError) as exc:
        _err(f"--input {args.input}: {exc}")
        return EXIT_ERROR
    if not isinstance(doc, dict):
        _err(f"--input {args.input}: the input document must be a JSON object")
        return EXIT_ERROR
    eng = PolicyEngine(args.paths, reload_interval=1e9)
    if eng.error:
        _err(eng.error)
        return EXIT_ERROR
    d = eng.decide(doc)
    if args.format == "json":
        print(json.dumps({"allowed": d.allowed, "deny": list(d.reasons), "error": d.error}))
    else:
        print("allow" if d.allowed else "deny")
        for r in d.reasons:
            print(f"  - {r}")
    if d.error:
        return EXIT_ERROR
    return EXIT_OK if d.allowed else EXIT_FAIL


def _policy_test(args) -> int:
    from .policy import run_tests

    rep = run_tests(args.paths, pattern=args.run)
    if rep.error:
        _err(rep.error)
        return EXIT_ERROR
    for r in rep.results:
        if r.outcome != "pass" or args.verbose:
            print(f"{r.outcome.upper():5} {r.name}  ({r.file})" + (f": {r.detail}" if r.detail else ""))
    n = {o: sum(1 for r in rep.results if r.outcome == o) for o in ("pass", "fail", "error")}
    print(f"{'-' * 60}\nPASS: {n['pass']}/{len(rep.results)}" + (f"  FAIL: {n['fail']}" if n["fail"] else "")
          + (f"  ERROR: {n['error']}" if n["error"] else ""))
    if not rep.results:
        _err("no test_* rules found")
    return rep.exit_code


def _audit_verify(args) -> int:
    from .audit import load_public_keys, verify

    keys = None
    try:
        if args.public_key:
            with open(args.public_key, encoding="utf-8") as f:
                keys = load_public_keys(f.read())
        rep = verify(args.paths, public_keys=keys, checkpoints=args.checkpoints)
    except (OSError, ValueError) as exc:
        _err(str(exc))
        return EXIT_ERROR
    if args.format == "json":
        print(json.dumps(rep.to_json()))
    else:
        if rep.ok:
            print(f"OK: {rep.records} records (seq {rep.first_seq}..{rep.last_seq}) in {len(rep.files)} file(s); "
                  f"{rep.checkpoints_verified}/{rep.checkpoints} checkpoint(s) matched"
                  + (", signatures verified" if rep.signatures_checked else ""))
        else:
            print(f"TAMPERED: {rep.problem}")
        for n in rep.notes:
            print(f"note: {n}")
    return EXIT_OK if rep.ok else EXIT_FAIL


def _audit_report(args) -> int:
    from .audit import expand_paths, iter_records
    from .report import format_html, format_json, format_text, summarise

    try:
        expand_paths(args.paths)
        s = summarise((rec for _, _, rec in iter_records(args.paths)), by=args.by)
    except OSError as exc:
        _err(str(exc))
        return EXIT_ERROR
    out = {"text": format_text, "json": format_json, "html": format_html}[args.format](s)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    return EXIT_OK
