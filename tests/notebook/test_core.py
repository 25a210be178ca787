"""The pure core: walking, scrubbing in place and in memory, allowlists, odd layouts (trust tier 1)."""
import base64
import json
import random

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from jupyter_securellm.notebook import (
    Baseline,
    NotebookError,
    process_notebook,
    process_text,
    scrub_notebook_model,
)


def _nb_text(nb) -> str:
    return nbformat.writes(nb) + "\n"


def test_pem_key_over_many_source_lines(kit, engine):
    pem = kit.secret("private-key", 1)
    assert pem.count("\n") >= 2
    nb = new_notebook()
    nb.cells = [new_markdown_cell(f"before\nKEY = '''\n{pem}\n'''\nafter\n")]
    src = _nb_text(nb)
    result = process_notebook(src, "pem.ipynb", engine, scrub=True)
    (f,) = result.findings
    assert f.rule_id == "private-key" and f.end_line > f.line
    out = result.new_text
    assert "PRIVATE KEY" not in out and "[REDACTED:private-key]" in out
    scrubbed = nbformat.reads(out, as_version=4)
    assert scrubbed.cells[0].source == "before\nKEY = '''\n[REDACTED:private-key]\n'''\nafter\n"
    assert _nb_text(scrubbed) == out  # re-split the way nbformat stores sources
    assert process_notebook(out, "pem.ipynb", engine, scrub=True).new_text is None


def test_crlf_and_source_as_one_string_keep_their_bytes(kit, engine):
    key = kit.secret("github-token", 4)
    doc = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                      "source": f"a = 1\ntoken = '{key}'\nb = 2"}],
           "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    src = json.dumps(doc, indent=1).replace("\n", "\r\n")
    result = process_notebook(src, "crlf.ipynb", engine, scrub=True)
    assert result.new_text == src.replace(key, "[REDACTED:github-token]")
    (f,) = result.findings
    line = src.split("\n")[f.line - 1]
    assert line[f.column - 1 : f.end_column - 1] == key


def test_base64_encoded_key_in_output_is_found(kit, engine):
    key = kit.secret("openai-api-key", 5)
    blob = base64.b64encode(f"OPENAI_API_KEY={key}".encode()).decode()
    nb = new_notebook()
    nb.cells = [new_code_cell("print(blob)", outputs=[new_output("stream", text=f"{blob}\n")])]
    result = process_notebook(_nb_text(nb), "b64.ipynb", engine, scrub=True)
    assert [f.rule_id for f in result.findings] == ["openai-api-key"]
    assert blob not in result.new_text


def test_binary_images_are_never_touched_svg_is_text(kit, engine):
    key = kit.secret("openai-api-key", 6)
    nb = new_notebook()
    data = {"image/png": f"iVBORw0KGgo{key}", "image/jpeg": key, "image/svg+xml": f"<svg>{key}</svg>",
            "text/plain": f"<Figure {key}>"}
    nb.cells = [new_code_cell("plot()", outputs=[new_output("display_data", data=data)])]
    result = process_notebook(_nb_text(nb), "img.ipynb", engine, scrub=True)
    out = nbformat.reads(result.new_text, as_version=4).cells[0].outputs[0].data
    assert out["image/png"] == data["image/png"] and out["image/jpeg"] == key
    # SVG is XML text (a plot title showing a config value): scanned and scrubbed like text/html
    assert out["image/svg+xml"] == "<svg>[REDACTED:openai-api-key]</svg>"
    assert [f.field for f in result.findings if "svg" in (f.field or "")]
    assert out["text/plain"] == "<Figure [REDACTED:openai-api-key]>"


@pytest.mark.parametrize("name", ["outputs", "metadata", "allowlisted"])
def test_in_memory_scrub_agrees_with_file_scrub(kit, engine, name):
    """The save hook's path (a NotebookNode) gives what the CLI's path (the file) gives."""
    tin = kit.fill((kit.GOLDEN / f"{name}.in.ipynb").read_text(encoding="utf-8"))
    want = kit.fill((kit.GOLDEN / f"{name}.out.ipynb").read_text(encoding="utf-8"))
    nb = nbformat.reads(tin, as_version=4)
    hits = scrub_notebook_model(nb, engine)
    assert _nb_text(nb) == want
    assert len(hits) == len(process_notebook(tin, "x.ipynb", engine).findings)
    for h in hits:
        assert h.where() and h.rule_id and h.fingerprint


def test_in_memory_block_mode_changes_nothing(kit, engine):
    tin = kit.fill((kit.GOLDEN / "outputs.in.ipynb").read_text(encoding="utf-8"))
    nb = nbformat.reads(tin, as_version=4)
    hits = scrub_notebook_model(nb, engine, redact=False)
    assert hits and _nb_text(nb) == tin
    assert any(h.where() == "cells[1].source line 2" and h.rule_id == "openai-api-key" for h in hits)


def test_baseline_allows_by_fingerprint(kit, engine, tmp_path):
    key = kit.secret("github-token", 7)
    other = kit.secret("github-token", 8)
    text = f"a={key}\nb={other}\n"
    first = process_text(text, "t.txt", engine)
    assert len(first.findings) == 2
    path = tmp_path / "baseline.json"
    Baseline.write(str(path), [first.findings[0]])
    stored = path.read_text()
    assert key not in stored and first.findings[0].fingerprint in stored
    second = process_text(text, "t.txt", engine, baseline=Baseline.load(str(path)), scrub=True)
    assert [f.line for f in second.findings] == [2] and second.allowed == 1
    assert second.new_text == f"a={key}\nb=[REDACTED:github-token]\n"


def test_text_positions_and_pragmas(kit, engine):
    a, b, c = kit.secret("groq-api-key", 1), kit.secret("groq-api-key", 2), kit.secret("groq-api-key", 3)
    text = f"x\n  k1 = '{a}'\n# securellm: allow-next-line\nk2 = '{b}'\nk3 = '{c}'  // securellm: allow\n"
    result = process_text(text, "f.py", engine)
    assert [(f.line, f.column, f.end_column) for f in result.findings] == [(2, 9, 9 + len(a))]
    assert result.allowed == 2


def test_duplicate_keys_are_refused_not_guessed(kit, engine):
    key = kit.secret("github-token", 9)
    src = ('{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "x", "source": "' + key + '"}],'
           ' "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    with pytest.raises(NotebookError):
        process_notebook(src, "dup.ipynb", engine, scrub=True)


@pytest.mark.parametrize("text,msg", [
    ('{"cells": [', "not valid JSON"),
    ('[]', "top-level"),
    ('{"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}', "nbformat 3"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "'cells'"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, "outputs": []}]}',
     "cells[0]: missing field 'source'"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, "source": ""}]}',
     "'outputs'"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, "source": "",'
     ' "outputs": [{"output_type": "stream", "name": "stdout"}]}]}', "cells[0].outputs[0]"),
])
def test_malformed_notebooks_say_what_and_where(engine, text, msg):
    with pytest.raises(NotebookError, match=r".*") as info:
        process_notebook(text, "bad.ipynb", engine)
    assert msg in str(info.value)


# -- property: random notebooks with keys anywhere ------------------------------------------------

RULES = ["openai-api-key", "github-token", "anthropic-api-key", "groq-api-key", "aws-access-key-id"]
words = st.text(st.sampled_from(list("abc xyz\n\t\"\\é😀{}[]:,")), max_size=30)


@st.composite
def notebooks(draw):
    rnd = random.Random(draw(st.integers(0, 2**32)))
    planted = []

    def maybe_secret():
        s = draw(words)
        if draw(st.booleans()):
            key = kit_secret(rnd.choice(RULES), rnd.randrange(10**6))
            planted.append(key)
            cut = draw(st.integers(0, len(s)))
            s = s[:cut] + " " + key + " " + s[cut:]
        return s

    nb = new_notebook()
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            outs = []
            for _ in range(draw(st.integers(0, 3))):
                kind = draw(st.sampled_from(["stream", "error", "display_data"]))
                if kind == "stream":
                    outs.append(new_output("stream", text=maybe_secret()))
                elif kind == "error":
                    outs.append(new_output("error", ename="E", evalue=maybe_secret(),
                                           traceback=[maybe_secret(), maybe_secret()]))
                else:
                    outs.append(new_output("display_data", data={"text/html": maybe_secret(),
                                                                 "text/plain": maybe_secret()}))
            nb.cells.append(new_code_cell(maybe_secret(), outputs=outs, metadata={"note": maybe_secret()}))
        else:
            nb.cells.append(new_markdown_cell(maybe_secret()))
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m": {"state": {"v": maybe_secret()}}}}}
    ascii_only = draw(st.booleans())
    text = json.dumps(nbformat.v4.nbjson.split_lines(nbformat.from_dict(json.loads(nbformat.writes(nb)))),
                      indent=draw(st.sampled_from([None, 1, 2])), ensure_ascii=ascii_only, sort_keys=True)
    return text, planted


def kit_secret(rule, seed):
    from jupyter_securellm.detect import fake_secret

    return fake_secret(rule, seed=seed)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(notebooks())
def test_random_notebooks_scrub_clean_and_idempotent(engine, case):
    text, planted = case
    result = process_notebook(text, "r.ipynb", engine, scrub=True)
    out = result.new_text if result.new_text is not None else text
    for key in planted:
        assert key not in out and json.dumps(key)[1:-1] not in out
    assert len(result.findings) >= len(set(planted))
    nbformat.reads(out, as_version=4)  # still a notebook
    again = process_notebook(out, "r.ipynb", engine, scrub=True)
    assert again.new_text is None and again.findings == []
    if not planted:
        assert result.new_text is None
    # every finding's reported span, read back from the file as stored, decodes to a planted key
    lines = text.split("\n")
    for f in result.findings:
        if f.line == f.end_line:
            raw = lines[f.line - 1][f.column - 1 : f.end_column - 1]
            assert json.loads(f'"{raw}"') in planted


@pytest.mark.parametrize("where,value", [("source", ["ok\n", 3]), ("text", ["a", None])])
def test_non_string_lines_are_reported(engine, where, value):
    cell = {"cell_type": "code", "metadata": {}, "source": "", "outputs": [{"output_type": "stream", "name": "stdout", "text": ""}]}
    if where == "source":
        cell["source"] = value
    else:
        cell["outputs"][0]["text"] = value
    text = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]})
    with pytest.raises(NotebookError, match="is not a string or an array of strings"):
        process_notebook(text, "x.ipynb", engine)


def test_json_mime_arrays_are_walked_not_joined(kit, engine):
    key = kit.secret("github-token", 42)
    nb = new_notebook()
    nb.cells = [new_code_cell("x", outputs=[new_output("display_data", data={"application/vnd.custom+json": [1, {"t": key}]})])]
    result = process_notebook(_nb_text(nb), "j.ipynb", engine, scrub=True)
    assert [f.field for f in result.findings] == ['outputs[0].data["application/vnd.custom+json"][1].t']
    assert key not in result.new_text


def test_scan_cache_skips_unchanged_fields_and_follows_known_secrets(kit):
    from jupyter_securellm.detect import Redactor
    from jupyter_securellm.notebook import Engine
    from jupyter_securellm.notebook.core import ScanCache

    redactor = Redactor()
    engine = Engine(redactor)
    calls = []
    real_scan = engine.scan
    engine.scan = lambda text: calls.append(len(text)) or real_scan(text)
    cache = ScanCache()
    value = "v4lue-" + kit.secret("groq-api-key", 43)[4:20]
    nb = new_notebook()
    nb.cells = [new_code_cell(f"x = '{value}'", outputs=[new_output("stream", text="log\n" * 100)])]
    assert scrub_notebook_model(nb, engine, cache=cache) == []
    first = len(calls)
    assert first >= 1 and len(cache) == 2
    assert scrub_notebook_model(nb, engine, cache=cache) == [] and len(calls) == first  # all from the cache
    nb.cells[0].source += "\ny = 2"
    scrub_notebook_model(nb, engine, cache=cache)
    assert len(calls) == first + 1 and calls[-1] == len(nb.cells[0].source)  # only the changed field
    redactor.add_secret(value)  # e.g. read from Vault: every cached verdict is stale now
    (hit,) = scrub_notebook_model(nb, engine, cache=cache)
    assert hit.rule_id == "known-secret" and value not in nb.cells[0].source


def test_secrets_used_as_json_keys_are_found_and_renamed(kit, engine):
    k1, k2, k3 = kit.secret("github-token", 44), kit.secret("github-token", 45), kit.secret("groq-api-key", 44)
    nb = new_notebook()
    nb.metadata["tokens"] = {k1: f"value {k3}", k2: {"nested": k3}, "plain": 1}
    src = _nb_text(nb)
    result = process_notebook(src, "k.ipynb", engine, scrub=True)
    fields = sorted(f.field for f in result.findings)
    assert fields == sorted(["metadata.tokens.[REDACTED:github-token] (key)"] * 2
                            + ["metadata.tokens.[REDACTED:github-token]", "metadata.tokens.[REDACTED:github-token].nested"])
    for f in result.findings:
        assert all(k not in f.field for k in (k1, k2, k3))
        raw = src.split("\n")[f.line - 1][f.column - 1 : f.end_column - 1]
        assert raw in (k1, k2, k3)
    out = json.loads(result.new_text)["metadata"]["tokens"]
    assert list(out) == ["[REDACTED:github-token]", "[REDACTED:github-token] 2", "plain"]
    assert out["[REDACTED:github-token]"] == "value [REDACTED:groq-api-key]"
    assert out["[REDACTED:github-token] 2"] == {"nested": "[REDACTED:groq-api-key]"}
    assert process_notebook(result.new_text, "k.ipynb", engine, scrub=True).new_text is None
    # the in-memory path (save hook) renames the same way
    mem = nbformat.reads(src, as_version=4)
    assert len(scrub_notebook_model(mem, engine)) == 4
    assert _nb_text(mem) == nbformat.writes(nbformat.reads(result.new_text, as_version=4)) + "\n"


def test_utf8_bom_is_kept(kit, engine):
    key = kit.secret("github-token", 45)
    nb = new_notebook()
    nb.cells = [new_markdown_cell(f"t = {key}")]
    src = "\ufeff" + _nb_text(nb)
    result = process_notebook(src, "bom.ipynb", engine, scrub=True)
    assert result.new_text == src.replace(key, "[REDACTED:github-token]")
    (f,) = result.findings
    assert src.split("\n")[f.line - 1][f.column - 1 : f.end_column - 1] == key
