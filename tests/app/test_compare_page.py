"""The Compare page under AppTest with the real pair (MiniLM against MPNet) on the default corpus: what the page
draws (the heatmap component's payload, the pair map's data, the tables, the downloads) equals values computed
here with the library's public functions and, for one cell, with CKA written out in numpy."""

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest

import encoderscope as es
from encoderscope import corpora
from tests.app.conftest import app, download, heatmap, heatmap_values, messages, no_exceptions
from tests.conftest import MPNET_ID

TEXTS = [t for t, _ in corpora.CORPORA["Word senses (bank, bat, spring, cell)"]]
EXACT = 1.0 / 65535 + 1e-9  # the heatmap's exact hover: uint16 over the 0-1 scale


def _run(at):
    at.run()
    no_exceptions(at)
    return at


@pytest.fixture(scope="module")
def feats(encoder, mpnet):
    """Independent per-layer features of both models on the default corpus: [L + 1, N, D] each."""
    return es.compare.layer_features(encoder, TEXTS), es.compare.layer_features(mpnet, TEXTS)


@pytest.fixture(scope="module")
def page(mpnet_dir):
    return _run(app("compare"))


def _map(at, key="compare_map"):
    found = heatmap(at, key)
    assert found is not None, f"no heatmap {key}"
    header, blocks = found
    return header, heatmap_values(header, blocks, header["view"])


def _pairs(at, key="compare_pairs") -> dict:
    for element in at.get("bidi_component"):
        if element.proto.id.endswith(f"-{key}") and element.proto.json:
            return json.loads(element.proto.json)
    raise AssertionError(f"no pair map {key}")


def _linear_cka(X, Y):
    X, Y = X - X.mean(0), Y - Y.mean(0)
    return np.linalg.norm(X.T @ Y) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y))


def test_default_map_is_minilm_against_mpnet_cka(page, encoder, mpnet):
    # Bugs: rows and columns swapped; another metric or another text set drawn; values off the library's.
    header, drawn = _map(page)
    expected = es.compare.layer_similarity(encoder, mpnet, TEXTS, metric="cka").matrix
    assert drawn.shape == expected.shape == (7, 13)  # MiniLM 6 layers + embeddings, MPNet 12 + embeddings
    np.testing.assert_allclose(drawn, expected, atol=EXACT)
    assert header["view"] == "compare_map:cka"
    assert header["rows"][0] == "emb" and header["cols"][-1] == "L12"


def test_last_cell_equals_cka_written_out(page, feats):
    _, drawn = _map(page)
    fa, fb = feats
    assert drawn[-1, -1] == pytest.approx(_linear_cka(fa[-1].astype(np.float64), fb[-1].astype(np.float64)), abs=2e-5)


def test_final_layers_are_each_others_best_match(page):
    _, drawn = _map(page)
    assert drawn[-1].argmax() == drawn.shape[1] - 1 and drawn[:, -1].argmax() == drawn.shape[0] - 1


def test_metric_and_untrained_baseline(feats, encoder, mpnet):
    # Bugs: the metric picker not reaching the map; the baseline drawn from the trained model; k ignored.
    at = _run(app("compare", {"metric": "mknn", "k": "5", "untrained": "1"}))
    header, drawn = _map(at)
    fa, fb = feats
    np.testing.assert_allclose(drawn, es.compare.similarity_matrix(fa, fb, "mknn", k=5).matrix, atol=EXACT)
    _, base = _map(at, "compare_map_untrained")
    fu = es.compare.layer_features(es.compare.untrained(mpnet, seed=0), TEXTS)
    np.testing.assert_allclose(base, es.compare.similarity_matrix(fa, fu, "mknn", k=5).matrix, atol=EXACT)
    assert drawn[-1, -1] > base[-1, -1] + 0.2  # training, not the architecture, makes the top layers agree


def test_pair_map_colours_by_the_librarys_overlap(page, feats):
    # Bugs: overlap of the wrong layer, or of raw rather than cosine neighbours; b's map not aligned onto a's.
    data = _pairs(page)
    fa, fb = feats
    nb = es.compare.neighbours(fa[-1], fb[-1], k=10)
    values = np.frombuffer(base64.b64decode(data["values"]), np.float32)
    np.testing.assert_allclose(values, nb.overlap, atol=1e-6)
    assert data["n"] == len(TEXTS) and data["texts"][0] == TEXTS[0]
    ya = np.frombuffer(base64.b64decode(data["xa"]), np.float32).reshape(-1, 2)
    yb = np.frombuffer(base64.b64decode(data["xb"]), np.float32).reshape(-1, 2)
    expected_a = es.project(fa[-1] / np.linalg.norm(fa[-1], axis=1, keepdims=True), method="pca", dim=2, seed=0)
    np.testing.assert_allclose(np.abs(ya), np.abs(expected_a), atol=1e-4)
    assert np.linalg.norm(yb - ya) < np.linalg.norm(ya - ya.mean(0))  # aligned: closer to a than a is to its mean
    assert f"mutual k-NN {nb.mutual_knn:.3f}" in data["note"]


def test_exports_are_the_drawn_matrix_and_overlaps(page, feats):
    name, raw = download(page, "Matrix (.csv)")
    assert name == "compare_cka.csv"
    frame = pd.read_csv(io.BytesIO(raw), index_col=0)
    _, drawn = _map(page)
    np.testing.assert_allclose(frame.to_numpy(), drawn, atol=EXACT)
    name, raw = download(page, "Overlaps (.csv)")
    overlaps = pd.read_csv(io.BytesIO(raw))
    fa, fb = feats
    np.testing.assert_allclose(overlaps["overlap"], es.compare.neighbours(fa[-1], fb[-1], k=10).overlap)
    assert overlaps["text"][0] == TEXTS[0]


def test_movers_table_lists_lowest_overlap_first(page, feats):
    fa, fb = feats
    nb = es.compare.neighbours(fa[-1], fb[-1], k=10)
    movers = next(d.value for d in page.dataframe if "overlap" in d.value.columns)
    assert movers["id"].tolist() == [int(i) for i in nb.movers[:10]]
    assert movers["text"][0] == TEXTS[int(nb.movers[0])]


def test_search_shows_each_models_top_k_with_rank_changes(encoder, mpnet, mpnet_dir):
    # Bugs: both tables from one model; rank changes against the wrong list; overlap@k miscounted.
    query = "I need to withdraw some money"
    at = _run(app("compare", {"q": query}))
    ref = es.compare.retrieval(encoder, mpnet, [query], TEXTS, k=5)
    tables = [d.value for d in at.dataframe if "change" in d.value.columns]
    assert [t["text"].tolist() for t in tables] == [[TEXTS[i] for i in ref.top_a[0]], [TEXTS[i] for i in ref.top_b[0]]]
    np.testing.assert_allclose(tables[0]["cosine"], ref.scores_a[0], atol=1e-3)
    for row, there in zip(tables[0].itertuples(), ref.rank_in_b[0], strict=True):
        assert row.change == ("=" if there == row.rank else f"new (#{there})" if there > 5
                              else f"↑{there - row.rank}" if there > row.rank else f"↓{row.rank - there}")
    shared = round(float(ref.overlap[0]) * 5)
    assert f"overlap@5: {shared} of 5" in " ".join(c.value for c in at.caption)


def test_url_state_restores_the_view(mpnet_dir):
    at = _run(app("compare", {"metric": "cka_debiased", "k": "7", "b": MPNET_ID}))
    assert at.selectbox(key="metric").value == "cka_debiased"
    assert at.number_input(key="k").value == 7
    assert at.selectbox(key="b_select").value == MPNET_ID
    assert "error" not in messages(at).lower()
