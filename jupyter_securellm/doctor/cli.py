"""The `doctor` subcommand: options, then the checks, then the report (text table or JSON)."""
from __future__ import annotations

import os
import sys

EXIT_ERROR = 2


def _err(msg: str) -> None:
    print(f"jupyter-securellm: error: {msg}", file=sys.stderr)


def _note(msg: str) -> None:
    print(f"jupyter-securellm: {msg}", file=sys.stderr)


def add_parser(sub) -> None:
    doc = sub.add_parser("doctor", help="self-check a deployment: environment, config, running server, Hub",
                         description="Check this interpreter's environment, the c.SecureLLM config, running servers "
                                     "and the Hub set-up. Prints names, paths and fingerprints only, never a secret. "
                                     "Exit 0 no failure (warnings allowed), 1 a check failed, 2 could not run.")
    doc.add_argument("--config", action="append", metavar="FILE",
                     help="jupyter_server_config.py/.json to check (repeatable; default: the files the server reads)")
    doc.add_argument("--lock", metavar="FILE", help="requirements lock the environment must match (e.g. requirements/deploy.txt)")
    doc.add_argument("--url", action="append", metavar="URL", help="base URL of a running server to check (repeatable)")
    doc.add_argument("--token", metavar="TOKEN", help="Jupyter token for --url (default $JUPYTER_TOKEN)")
    doc.add_argument("--pid", action="append", type=int, metavar="PID", help="pid of a running server to check")
    doc.add_argument("--hub-config", metavar="FILE", help="jupyterhub_config.py, for the hub-service checks")
    doc.add_argument("--only", action="append", metavar="GROUP_OR_ID",
                     help="run only these groups (environment, config, process, hub) or check ids (repeatable)")
    doc.add_argument("--format", "-f", choices=("text", "json"), default="text")
    doc.add_argument("--verbose", "-v", action="store_true", help="show the details of passing checks too")
    doc.add_argument("--sbom", metavar="FILE", help="also write a CycloneDX SBOM (JSON) of this environment to FILE")


def run(args) -> int:
    from . import Context, DoctorError, exit_code, run_checks
    from .core import GROUPS
    from .report import format_json, format_text

    only = args.only or []
    groups = tuple(g for g in GROUPS if g in only) or GROUPS
    ids = tuple(o for o in only if o not in GROUPS)
    if ids:
        groups = GROUPS
    ctx = Context(config_files=args.config or [], lock=args.lock, urls=args.url or [],
                  token=args.token or os.environ.get("JUPYTER_TOKEN"), pids=args.pid or [],
                  hub_config=args.hub_config)
    from .core import load_checks

    unknown = sorted(set(ids) - {c.id for c in load_checks()})
    if unknown:
        _err(f"doctor: no such check: {', '.join(unknown)} (groups: {', '.join(GROUPS)}; ids: docs/doctor.md)")
        return EXIT_ERROR
    try:
        if args.sbom:
            from .sbom import write_sbom

            write_sbom(args.sbom)
            _note(f"SBOM written to {args.sbom}")
        results = run_checks(ctx, groups=groups, only=ids)
    except DoctorError as exc:
        _err(f"doctor: {exc}")
        return EXIT_ERROR
    sys.stdout.write(format_json(results) if args.format == "json" else format_text(results, args.verbose))
    return exit_code(results)
