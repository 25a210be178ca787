"""Golden notebooks: scrub(input) == expected, byte for byte; scrub is idempotent; positions are exact.

Trust tier 1 (accidental exposure): keys in sources, every output type, attachments, metadata and
widget state must not survive a scrub; images and allowlisted lines must.
"""
import json

import nbformat
import pytest

from jupyter_securellm.notebook import process_notebook

CASES = ["outputs", "metadata", "allowlisted", "layout"]


def _load(kit, name):
    tin = (kit.GOLDEN / f"{name}.in.ipynb").read_text(encoding="utf-8")
    tout = (kit.GOLDEN / f"{name}.out.ipynb").read_text(encoding="utf-8")
    return tin, tout


@pytest.mark.parametrize("name", CASES)
def test_scrub_matches_golden(kit, engine, name):
    tin, tout = _load(kit, name)
    src, want = kit.fill(tin), kit.fill(tout)
    result = process_notebook(src, f"{name}.ipynb", engine, scrub=True)
    got = result.new_text if result.new_text is not None else src
    assert got == want
    # idempotent: a second pass finds nothing and changes nothing
    again = process_notebook(got, f"{name}.ipynb", engine, scrub=True)
    assert again.findings == [] and again.new_text is None


@pytest.mark.parametrize("name", CASES)
def test_findings_point_at_the_secret_as_stored(kit, engine, name):
    tin, tout = _load(kit, name)
    src = kit.fill(tin)
    lines = src.split("\n")
    result = process_notebook(src, f"{name}.ipynb", engine)
    kept = set(kit.template_secrets(tout))  # templates the expected output still holds
    expected = [v for v in kit.template_secrets(tin) if v not in kept]
    assert len(result.findings) == len(expected)
    for f in result.findings:
        assert f.line == f.end_line
        raw = lines[f.line - 1][f.column - 1 : f.end_column - 1]
        assert json.loads(f'"{raw}"') in expected, (f, raw)


def test_outputs_golden_covers_every_field(kit, engine):
    tin, _ = _load(kit, "outputs")
    result = process_notebook(kit.fill(tin), "outputs.ipynb", engine)
    where = {(f.cell, f.field) for f in result.findings}
    assert where == {
        (0, "source"),
        (1, "source"),
        (1, "outputs[0].text"),
        (2, "outputs[0].evalue"),
        (2, "outputs[0].traceback[0]"),
        (3, "outputs[0].data.text/plain"),
        (3, "outputs[1].data.text/html"),
        (3, "outputs[1].data.application/json.auth.token"),
        (4, "source"),
    }


def test_metadata_golden_covers_widgets_attachments(kit, engine):
    tin, _ = _load(kit, "metadata")
    result = process_notebook(kit.fill(tin), "metadata.ipynb", engine)
    where = {(f.cell, f.field) for f in result.findings}
    assert where == {
        (None, 'metadata.widgets["application/vnd.jupyter.widget-state+json"].state["7b5c"].state.value'),
        (0, 'attachments["notes.txt"].text/plain'),
        (0, "metadata.deploy.token"),
    }


@pytest.mark.parametrize("name", ["outputs", "metadata"])
def test_scrubbed_golden_is_what_nbformat_writes(kit, engine, name):
    """For files nbformat wrote, the scrubbed file is exactly nbformat's own serialization."""
    tin, _ = _load(kit, name)
    got = process_notebook(kit.fill(tin), f"{name}.ipynb", engine, scrub=True).new_text
    nb = nbformat.reads(got, as_version=nbformat.NO_CONVERT)
    assert nbformat.writes(nb) + "\n" == got
    nbformat.validate(nb)
