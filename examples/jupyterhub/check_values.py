"""Validate examples/jupyterhub/values.yaml against the zero-to-jupyterhub chart's own values schema.

The chart is not vendored here, so this is a script, not a test: point it at the chart's directory,
a z2jh checkout's `jupyterhub/` or `helm pull jupyterhub/jupyterhub --untar`'s `jupyterhub/`. Like
`helm install`, it merges our values onto the chart's defaults (maps merge, a null removes a key,
anything else replaces) and validates the result with the chart's schema (values.schema.json, or
values.schema.yaml in a checkout). As a control, it also checks that the schema rejects a misspelt key
in our own section (`singleuser.extraFiles`), so a pass is not the schema accepting anything.

    python examples/jupyterhub/check_values.py path/to/zero-to-jupyterhub-k8s/jupyterhub [--values FILE]

Exit 0 when valid, 1 with every error (path and message) otherwise. docs/jupyterhub.md records a run.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def helm_merge(defaults: dict, values: dict) -> dict:
    """Helm's coalescing of user values onto chart defaults."""
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_schema(chart: Path) -> tuple[dict, Path]:
    for name in ("values.schema.json", "values.schema.yaml"):
        path = chart / name
        if path.is_file():
            text = path.read_text()
            return (json.loads(text) if name.endswith(".json") else yaml.safe_load(text)), path
    raise SystemExit(f"check_values: no values.schema.json or values.schema.yaml in {chart}: point at the chart's "
                     "directory (zero-to-jupyterhub-k8s/jupyterhub, or `helm pull jupyterhub/jupyterhub --untar`)")


def errors_of(schema: dict, document: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("chart", type=Path, help="the z2jh chart directory (has values.yaml and values.schema.*)")
    ap.add_argument("--values", type=Path, default=HERE / "values.yaml")
    args = ap.parse_args(argv)
    schema, schema_path = load_schema(args.chart)
    defaults = yaml.safe_load((args.chart / "values.yaml").read_text())
    ours = yaml.safe_load(args.values.read_text())
    chart = yaml.safe_load((args.chart / "Chart.yaml").read_text()) if (args.chart / "Chart.yaml").is_file() else {}

    errors = errors_of(schema, helm_merge(defaults, ours))
    typo = copy.deepcopy(ours)
    for item in (typo.get("singleuser", {}).get("extraFiles") or {}).values():
        item["mountpath"] = item.pop("mountPath", "/x")  # misspelt: the schema must refuse it
    control = errors_of(schema, helm_merge(defaults, typo))
    report = {"values": str(args.values), "schema": str(schema_path), "chart_version": chart.get("version"),
              "chart_app_version": chart.get("appVersion"), "valid": not errors, "errors": errors,
              "control_rejected": bool(control), "control_errors": control[:3]}
    print(json.dumps(report, indent=2))
    if not control:
        print("check_values: the control (a misspelt key) was accepted: the schema does not check this section",
              file=sys.stderr)
        return 1
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
