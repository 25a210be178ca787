"""`jupyter-securellm`: scan and scrub notebooks and text files; install the git filter.

Exit codes: 0 clean (or done), 1 findings (scan) or changes pending (scrub --verify), 2 error.
Nothing this command prints ever contains a secret: findings are shown as location, rule id and
fingerprint.
"""
from __future__ import annotations

import argparse
import os
import sys

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
PROG = "jupyter-securellm"


class UsageError(Exception):
    """Bad options or environment; the message is printed as is."""


def _err(msg: str) -> None:
    print(f"{PROG}: error: {msg}", file=sys.stderr)


def _note(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------------------------- parser


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline", metavar="FILE",
                   help="baseline of allowed fingerprints (default: .securellm-baseline.json in the current "
                        "directory or at the top of the git work tree, if present)")
    p.add_argument("--no-baseline", action="store_true", help="ignore any baseline file")
    p.add_argument("--max-size", metavar="SIZE", default="100M",
                   help="refuse files larger than SIZE (default 100M, as GitHub does; 0 = no limit)")
    p.add_argument("--no-gitignore", action="store_true", help="walk directories without honouring .gitignore")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Keep secrets out of notebooks, files and git: scan, scrub, and an nbstripout-style git filter.",
        epilog="Exit codes: 0 clean, 1 findings (or changes pending with --verify), 2 error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    scan = sub.add_parser("scan", help="report secrets in notebooks and text files (never prints them)",
                          description="Scan notebooks (every cell, output, attachment, metadata and widget state) "
                                      "and text files; recurse into directories honouring .gitignore; '-' reads stdin.")
    scan.add_argument("paths", nargs="*", metavar="PATH", help="files, directories, or - for stdin (default: .)")
    scan.add_argument("--format", "-f", choices=("text", "json", "sarif"), default="text")
    scan.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    scan.add_argument("--stdin-name", metavar="NAME", help="name to report for stdin (a .ipynb name scans it as a notebook)")
    scan.add_argument("--write-baseline", metavar="FILE",
                      help="write every current finding's fingerprint to FILE (kept entries included) and exit 0")
    _add_input_options(scan)

    scrub = sub.add_parser("scrub", help="replace secrets with placeholders, in place or stdin to stdout",
                           description="Rewrite notebooks and text files with every finding replaced by a placeholder. "
                                       "Everything else is kept byte for byte; image outputs are never touched.")
    scrub.add_argument("paths", nargs="*", metavar="PATH", help="files, directories, or - for stdin to stdout")
    mode = scrub.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list what would change; write nothing")
    mode.add_argument("--verify", action="store_true", help="exit 1 if anything would change (for CI); write nothing")
    mode.add_argument("--textconv", action="store_true", help="print the scrubbed view of each file to stdout (git diff)")
    mode.add_argument("--stdin-filter", action="store_true", help="read stdin, write the scrubbed file to stdout (git clean filter)")
    mode.add_argument("--git-filter-process", action="store_true",
                      help="serve git's long-running filter protocol on stdin/stdout (filter.securellm.process)")
    scrub.add_argument("--path", dest="stdin_name", metavar="NAME", help="the name of the file on stdin (git passes %%f)")
    _add_input_options(scrub)

    for name, helptext in (("install", "install the git filter (like nbstripout --install)"),
                           ("uninstall", "remove the git filter and its attributes"),
                           ("status", "show whether the git filter is installed (exit 0 yes, 1 no)")):
        p = sub.add_parser(name, help=helptext, description=helptext)
        where = p.add_mutually_exclusive_group()
        where.add_argument("--global", dest="scope", action="store_const", const="global", help="use ~/.gitconfig")
        where.add_argument("--system", dest="scope", action="store_const", const="system", help="use the system gitconfig")
        p.add_argument("--attributes", metavar="FILE",
                       help="attributes file to edit (default .git/info/attributes; e.g. .gitattributes to share it)")
        if name == "install":
            p.add_argument("--python", metavar="PATH", help="interpreter for the filter (default: this one, absolute)")
            p.add_argument("--pattern", action="append", metavar="GLOB",
                           help="paths to filter (repeatable; default *.ipynb), e.g. --pattern '*.env'")
    broker = sub.add_parser("broker", help="run the broker alone as a JupyterHub service (trust tier 3)",
                            description="Serve the broker's REST API under /services/<name>/ for JupyterHub users, "
                                        "authenticating every request with the Hub. Reads c.SecureLLM.* from FILE "
                                        "(see docs/jupyterhub.md).")
    broker.add_argument("--config", metavar="FILE", help="a .py or .json config with c.SecureLLM.* settings")
    broker.add_argument("--ip", help="address to bind (default: the host of $JUPYTERHUB_SERVICE_URL)")
    broker.add_argument("--port", type=int, help="port to bind (default: the port of $JUPYTERHUB_SERVICE_URL)")
    from .governance.cli import add_parsers as add_governance_parsers  # policy eval|test, audit verify|report

    add_governance_parsers(sub)
    from .doctor.cli import add_parser as add_doctor_parser  # doctor: the deployment's self-check

    add_doctor_parser(sub)
    return parser


# --------------------------------------------------------------------------------------------- helpers


class _Context:
    def __init__(self, args):
        from .notebook.allowlist import Baseline, find_default_baseline
        from .notebook.files import parse_size

        try:
            self.max_size = parse_size(args.max_size)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.use_gitignore = not args.no_gitignore
        self.baseline = None
        if not args.no_baseline:
            path = args.baseline or find_default_baseline()
            if path:
                self.baseline = Baseline.load(path)
        from .notebook.engine import Engine

        try:
            self.engine = Engine()
        except ImportError as exc:
            raise UsageError(f"the detection engine is not available ({exc})") from None
        self.errors = 0

    def expand(self, paths):
        """Yield (path, explicit) for each file: directories are walked, explicit files kept as given."""
        from .notebook.files import iter_paths

        for p in paths:
            if p == "-":
                yield p, True
            elif os.path.isdir(p):
                for f in iter_paths(p, self.use_gitignore):
                    yield f, False
            else:
                yield p, True


def _looks_like_notebook(data: bytes) -> bool:
    """For stdin and git's textconv temp files, whose names may not end in .ipynb."""
    head = data[:4096].lstrip()
    return head.startswith(b"{") and b'"nbformat"' in data[:1 << 20] and b'"cells"' in data


def _process(ctx: _Context, name: str, data: bytes, scrub: bool, sniff: bool = False):
    """FileResult for ``data``; raises InputError / NotebookError."""
    from .notebook.core import process_notebook, process_text
    from .notebook.fields import NotebookError
    from .notebook.files import InputError, decode_notebook, decode_text, is_notebook_path

    if is_notebook_path(name) or (sniff and _looks_like_notebook(data)):
        try:
            text = decode_notebook(data, name)
            return process_notebook(text, name, ctx.engine, ctx.baseline, scrub=scrub)
        except NotebookError as exc:
            if is_notebook_path(name):
                raise InputError(f"{name}: {exc}") from None
            # sniffed only: not a notebook after all, treat as text
    return process_text(decode_text(data), name, ctx.engine, ctx.baseline, scrub=scrub)


def _read(ctx: _Context, path: str) -> bytes:
    from .notebook.files import InputError, read_input

    if path == "-":
        data = sys.stdin.buffer.read()
        if ctx.max_size and len(data) > ctx.max_size:
            raise InputError(f"stdin: {len(data) / 1e6:.1f} MB is larger than the limit (--max-size)")
        return data
    return read_input(path, ctx.max_size)


# --------------------------------------------------------------------------------------------- scan


def cmd_scan(args) -> int:
    from .notebook.allowlist import Baseline
    from .notebook.files import InputError, is_notebook_path, looks_binary
    from .notebook.report import format_json, format_sarif, format_text

    ctx = _Context(args)
    findings, allowed, files = [], 0, 0
    for path, explicit in ctx.expand(args.paths or ["."]):
        name = (args.stdin_name or "-") if path == "-" else path
        try:
            data = _read(ctx, path)
            if not explicit and looks_binary(data) and not is_notebook_path(name):
                continue  # images, archives... found by walking a directory
            result = _process(ctx, name, data, scrub=False, sniff=path == "-")
        except InputError as exc:
            _err(str(exc))
            ctx.errors += 1
            continue
        files += 1
        findings.extend(result.findings)
        allowed += result.allowed

    if args.write_baseline:
        n = Baseline.write(args.write_baseline, findings, keep=ctx.baseline)
        _note(f"baseline {args.write_baseline}: {n} fingerprint(s)")
        return EXIT_ERROR if ctx.errors else EXIT_CLEAN

    render = {"text": format_text, "json": format_json, "sarif": format_sarif}[args.format]
    out = render(findings)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    summary = f"{len(findings)} finding(s) in {files} file(s) scanned"
    if allowed:
        summary += f", {allowed} allowlisted"
    if ctx.errors:
        summary += f", {ctx.errors} error(s)"
    if args.format == "text" or args.output:
        _note(summary)
    if ctx.errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if findings else EXIT_CLEAN


# --------------------------------------------------------------------------------------------- scrub


def _rules_summary(findings) -> str:
    counts = {}
    for f in findings:
        counts[f.rule_id] = counts.get(f.rule_id, 0) + 1
    return ", ".join(f"{rid} x{n}" if n > 1 else rid for rid, n in sorted(counts.items()))


def cmd_scrub(args) -> int:
    from .notebook.files import InputError, check_writable, encode_text, is_notebook_path, looks_binary, write_atomic

    ctx = _Context(args)
    out = sys.stdout.buffer

    if args.git_filter_process:
        return _serve_git(ctx)

    if args.stdin_filter or (args.paths == ["-"]):
        name = args.stdin_name or "-"
        try:
            data = _read(ctx, "-")
            result = _process(ctx, name, data, scrub=True, sniff=True)
        except InputError as exc:
            _err(f"{exc}; nothing written")
            return EXIT_ERROR
        out.write(encode_text(result.new_text) if result.new_text is not None else data)
        out.flush()
        return EXIT_CLEAN

    if not args.paths:
        _err("scrub needs PATH arguments (or - / --stdin-filter for stdin)")
        return EXIT_ERROR

    pending = 0
    for path, explicit in ctx.expand(args.paths):
        try:
            data = _read(ctx, path)
            if looks_binary(data) and not is_notebook_path(path):
                if explicit and not args.textconv:
                    raise InputError(f"{path}: binary file; not scrubbed")
                if not explicit:
                    continue
            result = _process(ctx, path, data, scrub=True, sniff=args.textconv)
        except InputError as exc:
            _err(f"{exc}; file left untouched")
            ctx.errors += 1
            continue
        if args.textconv:
            out.write(encode_text(result.new_text) if result.new_text is not None else data)
            continue
        if result.new_text is None:
            continue
        pending += 1
        what = f"{len(result.findings)} secret(s): {_rules_summary(result.findings)}"
        if args.verify or args.dry_run:
            _note(f"would scrub {path} ({what})")
            continue
        try:
            check_writable(path)
            write_atomic(path, encode_text(result.new_text))
        except InputError as exc:
            _err(str(exc))
            ctx.errors += 1
            continue
        except OSError as exc:
            _err(f"{path}: cannot write ({exc.strerror}); file left untouched")
            ctx.errors += 1
            continue
        _note(f"scrubbed {path} ({what})")
    out.flush()
    if ctx.errors:
        return EXIT_ERROR
    if args.verify and pending:
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _serve_git(ctx: _Context) -> int:
    from .notebook import gitprocess
    from .notebook.files import InputError, encode_text

    def clean(pathname: str, data: bytes) -> bytes:
        if ctx.max_size and len(data) > ctx.max_size:
            raise InputError(f"{pathname}: {len(data) / 1e6:.1f} MB is larger than the limit of "
                             f"{ctx.max_size / 1e6:.0f} MB (set --max-size in the filter.securellm git config)")
        result = _process(ctx, pathname, data, scrub=True)
        return encode_text(result.new_text) if result.new_text is not None else data

    def log(pathname: str, exc: Exception) -> None:
        what = str(exc) if isinstance(exc, InputError) else f"{pathname}: internal error ({type(exc).__name__})"
        _err(f"{what}; git will not store it")

    try:
        return gitprocess.serve(sys.stdin.buffer, sys.stdout.buffer, clean, log)
    except (gitprocess.ProtocolError, EOFError) as exc:
        _err(f"git filter protocol: {exc or 'unexpected end of input'}")
        return EXIT_ERROR


# --------------------------------------------------------------------------------------------- git


def cmd_git(args) -> int:
    from .notebook import gitfilter

    scope = args.scope or "local"
    try:
        if args.command == "install":
            msgs = gitfilter.install(scope, args.attributes, args.python, tuple(args.pattern or gitfilter.DEFAULT_PATTERNS))
        elif args.command == "uninstall":
            msgs = gitfilter.uninstall(scope, args.attributes)
        else:
            installed, msgs = gitfilter.status(scope, args.attributes)
            print("\n".join(msgs))
            return EXIT_CLEAN if installed else EXIT_FINDINGS
    except gitfilter.GitError as exc:
        _err(str(exc))
        return EXIT_ERROR
    except OSError as exc:
        _err(f"{exc.filename}: {exc.strerror}")
        return EXIT_ERROR
    print("\n".join(msgs))
    return EXIT_CLEAN


# --------------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    from .notebook.allowlist import BaselineError

    try:
        if args.command == "scan":
            return cmd_scan(args)
        if args.command == "scrub":
            return cmd_scrub(args)
        if args.command == "broker":
            from .hub.service import main as broker_main

            return broker_main(args.config, ip=args.ip, port=args.port)
        if args.command in ("policy", "audit"):
            from .governance.cli import run as run_governance

            return run_governance(args)
        if args.command == "doctor":
            from .doctor.cli import run as run_doctor

            return run_doctor(args)
        return cmd_git(args)
    except (BaselineError, UsageError) as exc:
        _err(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:  # pragma: no cover
        return 130
    except BrokenPipeError:  # pragma: no cover - `... | head`
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - exit 2, not Python's 1 (which means "findings" here)
        # The frames help a bug report; the exception's message is left out because it could quote input.
        import traceback

        tb = "".join(traceback.format_tb(exc.__traceback__))
        _err(f"internal error ({type(exc).__name__}); no file was modified\n{tb}")
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
