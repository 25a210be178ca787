"""Accuracy on the generated labelled corpus (recall >= 0.97, precision >= 0.98), both backends."""
from jupyter_securellm.detect import Redactor
from jupyter_securellm.testing.corpus import labelled_corpus, score


def test_recall_and_precision(scanner):
    result = score(labelled_corpus(7), lambda t: [(f.start, f.end) for f in scanner.scan(t)])
    assert result["recall"] >= 0.97, result
    assert result["precision"] >= 0.98, result


def test_redaction_leaves_no_secret_in_any_context(backend):
    r = Redactor(backend=backend)
    for sample in labelled_corpus(8):
        out = r.redact(sample.text)
        for a, b in sample.secrets:
            assert sample.text[a:b] not in out, (sample.rule_id, sample.context)
