"""Accuracy on the generated labelled corpus (recall >= 0.99, precision 1.0), both backends."""
from jupyter_securellm.detect import Redactor
from jupyter_securellm.testing.corpus import labelled_corpus, score


def test_recall_and_precision(scanner):
    result = score(labelled_corpus(7), lambda t: [(f.start, f.end) for f in scanner.scan(t)])
    assert result["recall"] >= 0.99, result
    # every false positive is a bug in a rule or a template: none is tolerated
    assert result["fp"] == 0, result


def test_redaction_leaves_no_secret_in_any_context(backend):
    r = Redactor(backend=backend)
    for sample in labelled_corpus(8):
        out = r.redact(sample.text)
        for a, b in sample.secrets:
            assert sample.text[a:b] not in out, (sample.rule_id, sample.context)
