"""The Compare page on bad input: too few texts, duplicates, a model that cannot load, vectors instead of texts,
k too large. Each gets a clear message and no traceback; where one side still works, it is still shown."""

import numpy as np
import pytest

import encoderscope as es
from encoderscope import corpora
from tests.app.conftest import app, heatmap, heatmap_values, messages, no_exceptions
from tests.fuzz import corpus
from tests.fuzz.conftest import assert_survived


def _typed(lines: list[str], query: dict | None = None):
    at = app("compare", {"b": "all-MiniLM-L6-v2 (bundled)", **(query or {})})
    at.run()
    at.radio(key="source").set_value("Your sentences").run()
    at.text_area(key="sentences").set_value("\n".join(lines)).run()
    no_exceptions(at)
    return at


def test_too_few_texts_says_how_many_cka_needs():
    at = _typed(["One.", "Two.", "Three."])
    assert "CKA needs at least 4 texts" in messages(at)
    assert heatmap(at, "compare_map") is None


def test_duplicate_texts_are_said_to_tie_in_knn():
    at = _typed(["The cat sat.", "The cat sat.", "A dog ran.", "Rain fell.", "Bread rose.", "Ships sail."])
    text = messages(at)
    assert "identical texts" in text and "tie in k-NN" in text
    assert heatmap(at, "compare_map") is not None  # a warning, not a refusal


def test_k_above_the_corpus_size_is_explained():
    at = _typed(["The cat sat.", "A dog ran.", "Rain fell.", "Bread rose.", "Ships sail."], {"k": "10"})
    assert "k = 10 needs more than 10 texts" in messages(at)


def test_one_model_failing_to_load_keeps_the_other_side(encoder):
    # Bugs: a traceback; the whole page gone because one side failed; the other side's map not its own.
    at = app("compare", {"b": "no-such-org/no-such-model"})
    at.run()
    no_exceptions(at)
    assert "no-such-org/no-such-model" in messages(at)
    found = heatmap(at, "compare_map")
    assert found is not None, "the working side's map is gone"
    header, blocks = found
    drawn = heatmap_values(header, blocks, header["view"])
    texts = [t for t, _ in corpora.CORPORA["Word senses (bank, bat, spring, cell)"]]
    expected = es.compare.layer_similarity(encoder, encoder, texts).matrix
    np.testing.assert_allclose(drawn, expected, atol=1 / 65535 + 1e-9)
    np.testing.assert_allclose(np.diag(drawn), 1.0, atol=1e-4)


def test_vectors_instead_of_texts_are_refused_with_a_reason():
    at = app("compare")
    at.run()
    at.radio(key="source").set_value("Precomputed embeddings").run()
    no_exceptions(at)
    assert "Upload an embeddings array" in messages(at)  # the shared corpus input asks; nothing is compared
    assert heatmap(at, "compare_map") is None


@pytest.mark.parametrize("hostile", ["<script>alert(1)</script>", "[x](javascript:alert(1))"])
def test_hostile_text_in_the_link_is_escaped(hostile):
    at = app("compare", {"a": hostile})
    at.run()
    no_exceptions(at)
    for box in [*at.error, *at.warning]:
        assert "<script>" not in box.value and "](javascript" not in box.value


HOSTILE = [corpus.wire(t) for t in corpus.INJECTIONS[:6] + corpus.UNICODE[:4]]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: f"len{len(t)}")
def test_hostile_texts_are_compared_and_never_rendered_as_html(text):
    at = _typed([text, "The cat sat.", "A dog ran.", "Rain fell.", "Bread rose."])
    assert_survived(at, result=lambda page: heatmap(page, "compare_map") is not None)


@pytest.mark.parametrize("ref", [r for r in corpus.model_ids() if r.strip() and "\x00" not in r][:12])
def test_hostile_model_ids_in_the_link(ref):
    at = app("compare", {"b": ref})
    at.run()
    no_exceptions(at)
    assert heatmap(at, "compare_map") is not None  # side a (or both) still drawn


def test_public_mode_refuses_paths_in_the_link_and_keeps_the_default(mpnet_dir):
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_PUBLIC": "1"})
    try:
        at = app("compare", {"b": "/etc/passwd"})
        at.run()
        no_exceptions(at)
        assert "is not available on this server" in messages(at)
        assert at.selectbox(key="b_select").value == "sentence-transformers/all-mpnet-base-v2"
        assert "/etc/passwd" not in [o for s in at.selectbox for o in s.options]
    finally:
        settings.reload()
