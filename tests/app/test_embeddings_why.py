"""The Embeddings page's "Why are these close?" view draws the library's numbers.

Expected values are computed here from `es.embed` and `es.hidden_states` (the public API: the pair terms by hand),
never with the view under test.
"""

import io

import numpy as np
import pandas as pd
import pytest

import encoderscope as es
from encoderscope import corpora, settings
from tests.app.conftest import download, figures, messages, no_exceptions, opened
from tests.app.test_embeddings_views import show

A = "A man is playing a guitar on stage."  # the view's default typed pair
B = "Someone performs music with an instrument."


def _titled(at, prefix: str) -> dict:
    found = [f for f in figures(at) if ((f["layout"].get("title") or {}).get("text") or "").startswith(prefix)]
    assert len(found) == 1, [(f["layout"].get("title") or {}).get("text") for f in figures(at)]
    return found[0]


def _z(fig) -> np.ndarray:
    from tests.app.conftest import array

    return array(fig["data"][0]["z"]).astype(float)


def _why(query: dict | None = None):
    """The page opened, then its "Why are these close?" view shown (only the view shown runs)."""
    return show(opened("embeddings", query or {}), "Why are these close?")


def _pairs(encoder, a: str, b: str) -> np.ndarray:
    """h_i · g_j / (n m |u| |v|) from the last hidden states."""
    h = es.hidden_states(encoder, a)[-1].astype(np.float64)
    g = es.hidden_states(encoder, b)[-1].astype(np.float64)
    u, v = h.mean(0), g.mean(0)
    return h @ g.T / (len(h) * len(g) * np.linalg.norm(u) * np.linalg.norm(v))


@pytest.fixture(scope="module")
def typed():
    at = _why()
    at.radio(key="why_mode").set_value("Two texts of my own").run()
    no_exceptions(at)
    return at


def test_typed_pair_matrix_and_cosine(typed, encoder):
    # Bug caught: the matrix transposed (rows must be text A), a wrong normaliser, the wrong texts explained.
    expected = _pairs(encoder, A, B)
    z = _z(_titled(typed, "Token × token terms"))
    np.testing.assert_allclose(z, expected, atol=1e-5)
    E = es.embed(encoder, [A, B])
    cosine = [m.value for m in typed.metric if m.label == "Cosine"]
    assert cosine == [f"{float(E[0] @ E[1]):.4f}"]
    assert [m.value for m in typed.metric if m.label == "Completeness error"] == ["0 (exact)"]


def test_shaded_tokens_are_the_row_and_column_sums(typed, encoder):
    # Bug caught: text B shaded with A's scores, or tokens dropped when a text wraps onto a second line.
    expected = _pairs(encoder, A, B)
    z = _z(_titled(typed, "Contribution of each token"))
    drawn = z[~np.isnan(z)]
    np.testing.assert_allclose(drawn, np.concatenate([expected.sum(1), expected.sum(0)]), atol=1e-5)
    fig = _titled(typed, "Contribution of each token")
    assert fig["data"][0]["zmin"] == -fig["data"][0]["zmax"]  # diverging scale centred on 0


def test_token_scores_csv(typed, encoder):
    name, data = download(typed, "Token scores (CSV)")
    frame = pd.read_csv(io.BytesIO(data))
    expected = _pairs(encoder, A, B)
    assert name == "token_scores.csv"
    assert frame["token"].tolist() == [
        *encoder.tokenizer.convert_ids_to_tokens(encoder.tokenizer(A)["input_ids"]),
        *encoder.tokenizer.convert_ids_to_tokens(encoder.tokenizer(B)["input_ids"]),
    ]
    np.testing.assert_allclose(frame["score"], np.concatenate([expected.sum(1), expected.sum(0)]), atol=1e-6)
    assert frame["special"].sum() == 4  # [CLS] and [SEP] of each text


def test_integrated_gradients_from_the_method_box(typed, encoder):
    typed.selectbox(key="emb_why_method").set_value("integrated_gradients").run()
    no_exceptions(typed)
    assert not [f for f in figures(typed) if "Token × token" in str(f["layout"].get("title"))]  # exact only
    ex = es.explain_similarity(encoder, A, B, method="integrated_gradients", steps=int(typed.slider(key="emb_why_steps").value))
    drawn = _z(_titled(typed, "Contribution of each token"))
    np.testing.assert_allclose(drawn[~np.isnan(drawn)], np.concatenate([ex.scores_a, ex.scores_b]), atol=1e-6)
    assert [m.value for m in typed.metric if m.label == "Completeness error"] == [f"{ex.completeness:.2%}"]
    typed.selectbox(key="emb_why_method").set_value("auto").run()


def test_empty_typed_text_is_a_message(typed):
    typed.text_area(key="why_b").set_value("   ").run()
    no_exceptions(typed)
    assert "Type two texts to compare." in messages(typed)
    typed.text_area(key="why_b").set_value(B).run()


def test_neighbour_choices_are_the_nearest_sentences(encoder):
    # Bug caught: the neighbour list not sorted by cosine, or the sentence offered as its own neighbour.
    at = _why()
    texts = [t for t, _ in corpora.CORPORA[at.selectbox(key="example").value]]
    X = es.embed(encoder, texts)
    i = 3
    at.selectbox(key="why_sentence").set_value(i).run()
    options = at.selectbox(key="why_neighbour").options
    cos = X @ X[i]
    cos[i] = -np.inf
    top = np.argsort(-cos)[:5]
    assert [f"{cos[j]:.3f}" for j in top] == [o.split(" · ")[0] for o in options]
    j = int(top[0])
    z = _z(_titled(at, "Token × token terms"))
    assert z.sum() == pytest.approx(float(X[i] @ X[j]), abs=1e-5)


@pytest.fixture
def public():
    settings.reload({"ENCODERSCOPE_PUBLIC": "1"})
    yield settings.get()
    settings.reload()


def test_public_mode_lowers_steps_and_caps_tokens(public, encoder):
    at = _why()
    at.radio(key="why_mode").set_value("Two texts of my own").run()
    assert at.slider(key="emb_why_steps").max == public.attribution_max_steps == 16
    long = "cats and dogs " * 60
    at.text_area(key="why_a").set_value(long).run()
    at.selectbox(key="emb_why_method").set_value("integrated_gradients").run()
    no_exceptions(at)
    assert any(f"only the first {public.attribution_max_tokens}" in c.value.replace("\\", "") for c in at.caption)
    drawn = _z(_titled(at, "Contribution of each token"))
    n_b = len(encoder.tokenizer(B)["input_ids"])
    assert np.count_nonzero(~np.isnan(drawn)) == public.attribution_max_tokens + n_b
