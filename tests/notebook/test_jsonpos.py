"""Raw positions of JSON string tokens and decoded -> raw offset mapping (trust tier 1: accurate reports)."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_securellm.notebook.jsonpos import line_columns, locate, raw_offsets


def test_locate_paths_strings_and_arrays():
    doc = {"a": [1, {"b": "x\ty", "c": ["p\n", "q"]}], "z": "last", "n": None}
    text = json.dumps(doc, indent=1)
    spans = locate(text, [("a", 1, "b"), ("a", 1, "c"), ("z",)])
    assert [json.loads(text[s:e]) for s, e in spans[("a", 1, "b")]] == ["x\ty"]
    assert [json.loads(text[s:e]) for s, e in spans[("a", 1, "c")]] == ["p\n", "q"]
    assert [json.loads(text[s:e]) for s, e in spans[("z",)]] == ["last"]


def test_locate_missing_or_wrong_type():
    text = '{"a": {"b": 1}}'
    with pytest.raises(ValueError):
        locate(text, [("a", "c")])
    with pytest.raises(ValueError):
        locate(text, [("a", "b")])


def test_locate_skips_tricky_siblings():
    # brackets and quotes inside strings, nested containers, numbers, literals before the target
    text = '{"x": ["]", "}\\"", {"y": [1, 2.5e3, true, null]}], "t": "hit"}'
    (span,) = locate(text, [("t",)])[("t",)]
    assert text[span[0] : span[1]] == '"hit"'


alphabet = st.characters(blacklist_categories=("Cs",)) | st.sampled_from(list('"\\\n\t\x1b\u2028é😀'))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet, max_size=40), st.booleans())
def test_raw_offsets_match_decoded_characters(value, ascii_only):
    text = '{"k": ' + json.dumps(value, ensure_ascii=ascii_only) + "}"
    (span,) = locate(text, [("k",)])[("k",)]
    offsets = list(range(len(value) + 1))
    raw = raw_offsets(text, span, offsets)
    assert raw[-1] == span[1] - 1  # the end maps to the closing quote
    for k in range(len(value)):
        # the raw characters from raw[k] to raw[k+1] decode to exactly value[k]
        assert json.loads('"' + text[raw[k] : raw[k + 1]] + '"') == value[k]


def test_line_columns():
    text = "ab\ncd\n\nxyz"
    got = line_columns(text, [0, 1, 3, 6, 7, 9, 10])
    assert got == [(1, 1), (1, 2), (2, 1), (3, 1), (4, 1), (4, 3), (4, 4)]
    # unsorted queries give the same answers
    assert line_columns(text, [9, 0, 3]) == [(4, 3), (1, 1), (2, 1)]
