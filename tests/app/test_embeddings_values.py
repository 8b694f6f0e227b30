"""The embeddings page draws the library's numbers: coordinates from `es.project(es.embed(...))`, neighbours from
a numpy cosine top-k, both computed here for the method, seed and corpus the page's widgets show."""

import html
import io

import numpy as np
import pytest

import encoderscope as es
from encoderscope import corpora, settings
from tests.app.conftest import array, download, figures, messages, no_exceptions, opened

QUERY = "money deposited in an account"


@pytest.fixture(scope="module")
def page():
    at = opened("embeddings")
    return at


@pytest.fixture(scope="module")
def corpus(page) -> list[str]:
    assert page.radio(key="source").value == "Example corpus"
    return [text for text, _ in corpora.CORPORA[page.selectbox(key="example").value]]


@pytest.fixture(scope="module")
def X(encoder, corpus) -> np.ndarray:
    return es.embed(encoder, corpus)


def _scatter(at) -> dict:
    return figures(at)[0]


def _points(fig, dim: int = 2) -> dict[str, np.ndarray]:
    """{sentence: coordinates} of every corpus point (not the neighbour rings or the query star)."""
    points = {}
    for trace in fig["data"]:
        if trace["name"] in ("nearest neighbours", "query"):
            continue
        coords = np.stack([array(trace[axis]) for axis in "xyz"[:dim]], axis=1)
        for (text, _), xy in zip(trace["customdata"], coords, strict=True):
            points[html.unescape(text)] = xy
    return points


def _trace(fig, name: str) -> dict:
    return next(t for t in fig["data"] if t["name"] == name)


def _projection_widgets(at, method: str, dim: int = 2, seed: int = 0):
    at.selectbox(key="method").set_value(method)
    at.radio(key="dim").set_value(dim)
    at.number_input(key="seed").set_value(seed)
    at.run()
    no_exceptions(at)
    return at.selectbox(key="method").value, at.radio(key="dim").value, int(at.number_input(key="seed").value)


def _top_k(X: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = X.astype(np.float64) @ q.astype(np.float64)
    order = np.argsort(-scores, kind="stable")[:k]
    return order, scores[order]


@pytest.mark.parametrize("method,dim,seed", [("umap", 2, 0), ("umap", 2, 3), ("pca", 3, 0)])
def test_coordinates_are_the_library_projection(page, corpus, X, method, dim, seed):
    # Bug: points drawn against the wrong sentence (reordered by label), the seed or dimension ignored.
    method, dim, seed = _projection_widgets(page, method, dim, seed)
    points = _points(_scatter(page), dim)
    assert sorted(points) == sorted(corpus)
    # UMAP turns float noise into another layout, and the page embeds on the compute pool with its own thread
    # count: project the vectors the page served (checked against es.embed here) rather than the test's own.
    served = np.load(io.BytesIO(download(page, "Embeddings (.npy)")[1]), allow_pickle=False)
    np.testing.assert_allclose(served, X, atol=1e-5)
    expected = es.project(served, method, dim, seed=seed)
    got = np.stack([points[text] for text in corpus])
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.ptp(expected))


def test_pca_explained_variance(page, X):
    # Bug: the variance chart from another projection (or not normalised by the total variance).
    _projection_widgets(page, "pca", 2, 0)
    centred = X.astype(np.float64) - X.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    bars = next(f for f in figures(page) if f["data"][0]["type"] == "bar")["data"][0]
    np.testing.assert_allclose(array(bars["y"]), (s**2 / (s**2).sum())[:2], atol=1e-5)


def test_nearest_neighbours(page, encoder, corpus, X):
    # Bug: neighbours ranked by distance the wrong way, scores from a non-normalised dot product, or the
    # rings drawn on other points than the neighbours in the table.
    _projection_widgets(page, "pca", 2, 0)
    page.number_input(key="top_k").set_value(7)
    page.text_input(key="query").set_value(QUERY).run()
    no_exceptions(page)
    k = int(page.number_input(key="top_k").value)
    idx, scores = _top_k(X, es.embed(encoder, [QUERY])[0], k)
    table = page.table[0].value
    assert list(table["sentence"]) == [corpus[i] for i in idx]
    np.testing.assert_allclose(table["cosine"].astype(float).to_numpy(), scores, atol=1e-4)
    fig = _scatter(page)
    points = _points(fig)
    rings = _trace(fig, "nearest neighbours")
    ring_xy = np.stack([array(rings["x"]), array(rings["y"])], axis=1)
    np.testing.assert_allclose(ring_xy, np.stack([points[corpus[i]] for i in idx]), atol=1e-6)
    star = _trace(fig, "query")
    np.testing.assert_allclose([star["x"][0], star["y"][0]], ring_xy.mean(axis=0), atol=1e-5)
    page.text_input(key="query").set_value("").run()


@pytest.fixture
def capped():
    """A server whose projection shows at most 20 points (the settings' max_projection_points)."""
    settings.reload({"ENCODERSCOPE_MAX_PROJECTION_POINTS": "20"})
    yield 20
    settings.reload()


def test_projection_cap_and_neighbour_remapping(capped, encoder, corpus, X):
    # Bug: the cap ignored; the sample's positions confused with corpus indices, so the rings land on the
    # wrong points; or the neighbour search limited to the sample instead of the full corpus.
    at = opened("embeddings")
    _projection_widgets(at, "pca", 2, 0)
    at.number_input(key="top_k").set_value(10)
    at.text_input(key="query").set_value(QUERY).run()
    no_exceptions(at)
    assert f"exceed the projection cap of {capped:,}" in messages(at)
    fig = _scatter(at)
    points = _points(fig)
    assert len(points) == capped and set(points) <= set(corpus)
    shown = sorted(corpus.index(text) for text in points)
    expected = es.project(X[shown], "pca", 2, seed=0)
    np.testing.assert_allclose(np.stack([points[corpus[i]] for i in shown]), expected, atol=1e-4)
    idx, _ = _top_k(X, es.embed(encoder, [QUERY])[0], 10)
    assert list(at.table[0].value["sentence"]) == [corpus[i] for i in idx]  # searched over all sentences
    in_sample = [i for i in idx if i in shown]
    assert 0 < len(in_sample) < len(idx), "the test needs neighbours both inside and outside the sample"
    rings = _trace(fig, "nearest neighbours")
    assert [html.unescape(text) for text, _ in rings["customdata"]] == [corpus[i] for i in in_sample]
    ring_xy = np.stack([array(rings["x"]), array(rings["y"])], axis=1)
    np.testing.assert_allclose(ring_xy, np.stack([points[corpus[i]] for i in in_sample]), atol=1e-6)
