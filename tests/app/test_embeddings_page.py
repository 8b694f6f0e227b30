"""The embeddings page under AppTest: corpora, uploads, projections, neighbours, bad input."""

import io

import numpy as np
import pytest

from tests.app.conftest import app, array, figures, messages, no_exceptions
from tests.app.test_embeddings_views import show


def _run(at):
    at.run()
    no_exceptions(at)
    return at


@pytest.fixture(scope="module")
def page():
    return _run(app("embeddings"))


def test_default_corpus_umap(page):
    fig = figures(page)[0]
    names = {d["name"] for d in fig["data"]}
    assert "bank (river)" in names and "cell (phone)" in names  # one trace per label
    assert sum(len(d["customdata"]) for d in fig["data"]) == 43  # every sentence is a point
    assert "customdata" in fig["data"][0] and "%{customdata[0]}" in fig["data"][0]["hovertemplate"]


def test_pca_3d_and_clusters(page):
    page.selectbox(key="method").set_value("pca")
    page.radio(key="dim").set_value(3)
    page.selectbox(key="colour").set_value("k-means cluster").run()
    no_exceptions(page)
    fig = figures(page)[0]
    assert fig["data"][0]["type"] == "scatter3d"
    assert all(d["name"].startswith("cluster") for d in fig["data"])
    assert "variance" in " ".join(c.value for c in page.caption)


def test_nearest_neighbours(page):
    page.radio(key="dim").set_value(2)
    page.text_input(key="query").set_value("money deposited in an account").run()
    no_exceptions(page)
    table = page.table[0].value
    assert len(table) == 5 and "bank" in table["sentence"].iloc[0]
    names = [d["name"] for d in figures(page)[0]["data"]]
    assert "query" in names and "nearest neighbours" in names


def test_word_in_context(page):
    figs = figures(show(page, "One word in context"))
    try:
        line = next(f for f in figs if any("self-similarity" in d.get("name", "") for d in f["data"]))
        assert len(array(line["data"][0]["y"])) == 7
        assert any("“bank” at layer 6" in f["layout"].get("title", {}).get("text", "") for f in figs)
        page.text_input(key="word").set_value("zebra").run()
        no_exceptions(page)
        assert "appears in none" in messages(page)
    finally:
        show(page, "Sentences")


def test_typed_sentences_small_and_duplicates():
    at = _run(app("embeddings"))
    at.radio(key="source").set_value("Your sentences").run()
    at.text_area(key="sentences").set_value("same\nsame\nsame").run()
    no_exceptions(at)
    assert "PCA instead" in messages(at) and "same place" in messages(at)
    at.text_area(key="sentences").set_value("only one").run()
    no_exceptions(at)
    assert figures(at)
    at.text_area(key="sentences").set_value("  \n \n").run()
    assert "one sentence per line" in messages(at)


def test_csv_upload_and_columns():
    at = _run(app("embeddings"))
    at.radio(key="source").set_value("CSV upload").run()
    data = (
        "\ufefftopic;sentence\nsports;The striker scored.\nfinance;Stocks fell.\ncooking;Knead the dough.\n"
        "sports;The keeper saved it.\n"
    )
    at.file_uploader(key="csv_upload").set_value(("c.csv", data.encode(), "text/csv")).run()
    no_exceptions(at)
    assert at.selectbox(key="text_col").value == "sentence"
    at.selectbox(key="label_col").set_value("topic").run()
    no_exceptions(at)
    assert {d["name"] for d in figures(at)[0]["data"]} >= {"sports", "finance"}


def test_csv_rows_with_an_empty_text_are_dropped_with_a_notice():
    # Bug: rows dropped silently (the map shows fewer points than the file has rows, and nothing says why).
    at = _run(app("embeddings"))
    at.radio(key="source").set_value("CSV upload").run()
    data = "text,topic\nThe striker scored.,sports\n,finance\nStocks fell.,finance\n   ,cooking\nKnead it.,cooking\n"
    at.file_uploader(key="csv_upload").set_value(("c.csv", data.encode(), "text/csv")).run()
    no_exceptions(at)
    assert "2 row(s) with an empty 'text' were dropped." in messages(at)
    assert sum(len(d["customdata"]) for d in figures(at)[0]["data"]) == 3  # the three rows with a text


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"", "empty"),
        (b"\x00\xff\x00binary" * 100, "binary"),
        (b"col\n", "no data rows"),
    ],
)
def test_bad_csv_messages(data, expected):
    at = _run(app("embeddings"))
    at.radio(key="source").set_value("CSV upload").run()
    at.file_uploader(key="csv_upload").set_value(("bad.csv", data, "text/csv")).run()
    no_exceptions(at)
    assert expected in messages(at)


def _npy(array, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_precomputed_vectors_with_metadata():
    at = _run(app("embeddings"))
    at.radio(key="source").set_value("Precomputed embeddings").run()
    vectors = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    at.file_uploader(key="vec_upload").set_value(("v.npy", _npy(vectors), "application/octet-stream"))
    meta = "text,label\n" + "".join(f"sentence {i},{'ab'[i % 2]}\n" for i in range(30))
    at.file_uploader(key="meta_upload").set_value(("m.csv", meta.encode(), "text/csv")).run()
    no_exceptions(at)
    assert {d["name"] for d in figures(at)[0]["data"]} == {"a", "b"}


@pytest.mark.parametrize(
    "array,allow,expected",
    [
        (np.array([[{"x": 1}]], dtype=object), True, "pickle"),
        (np.ones(5), False, "2 dimensions"),
        (np.array([[np.nan, 1.0], [2, 3]]), False, "NaN"),
    ],
)
def test_bad_vectors(array, allow, expected):
    at = _run(app("embeddings"))
    at.radio(key="source").set_value("Precomputed embeddings").run()
    at.file_uploader(key="vec_upload").set_value(("v.npy", _npy(array, allow), "application/octet-stream")).run()
    no_exceptions(at)
    assert expected in messages(at)


def test_metadata_length_mismatch():
    at = _run(app("embeddings"))
    at.radio(key="source").set_value("Precomputed embeddings").run()
    at.file_uploader(key="vec_upload").set_value(("v.npy", _npy(np.ones((4, 3), np.float32)), "x"))
    at.file_uploader(key="meta_upload").set_value(("m.csv", b"text,label\na,b\n", "text/csv")).run()
    no_exceptions(at)
    assert "must match" in messages(at)


def test_projection_parameter_out_of_range(page):
    page.selectbox(key="method").set_value("umap")
    page.number_input(key="n_neighbors").set_value(200).run()
    no_exceptions(page)
    assert "n_neighbors was set to" in messages(page)


def test_word_layer0_is_one_point(page):
    show(page, "One word in context")
    try:
        page.text_input(key="word").set_value("bank").run()
        page.slider(key="word_layer").set_value(0).run()
        no_exceptions(page)
        scatter = next(f for f in figures(page) if "at layer 0" in f["layout"].get("title", {}).get("text", ""))
        xs = np.concatenate([array(d["x"]) for d in scatter["data"]])
        assert len(xs) == 12 and np.ptp(xs) == 0  # every occurrence of "bank" is the same static vector
    finally:
        show(page, "Sentences")


def test_truncated_npy_message():
    at = _run(app("embeddings"))
    at.radio(key="source").set_value("Precomputed embeddings").run()
    data = _npy(np.ones((50, 8), np.float32))[:-40]
    at.file_uploader(key="vec_upload").set_value(("v.npy", data, "application/octet-stream")).run()
    no_exceptions(at)
    assert "truncated" in messages(at)


def test_upload_over_the_server_limit_is_refused():
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_MAX_UPLOAD_MB": "1"})
    try:
        at = _run(app("embeddings"))
        at.radio(key="source").set_value("Precomputed embeddings").run()
        big = _npy(np.zeros((800, 384), np.float32))  # 1.2 MB
        at.file_uploader(key="vec_upload").set_value(("big.npy", big, "application/octet-stream")).run()
        no_exceptions(at)
        assert "the limit on this server is 1 MB" in messages(at)
        assert not figures(at)
    finally:
        settings.reload()
