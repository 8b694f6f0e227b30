"""What the download buttons of the attention and embeddings pages really serve, read back and compared with
the library's values computed here. (The VAE page's downloads are in test_vae_values.py, beside its tiny VAE.)"""

import io

import numpy as np
import pandas as pd
import pytest

import encoderscope as es
from encoderscope import corpora
from tests.app.conftest import download, main_heatmap, no_exceptions, opened

TEXT = "Riverbank, mud & <b>tokenization</b>."  # word pieces (river ##bank) and HTML


def _npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)  # a pickled array would raise here


def _csv(data: bytes, **kwargs) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, **kwargs)


@pytest.fixture(scope="module")
def attention_page():
    at = opened("attention", {"text": TEXT, "layer": "3", "head": "2"})
    return at


def test_attention_tensor_npy(attention_page, encoder):
    # Bug: the export holding one layer or a float16 copy, or another text's tensor.
    name, data = download(attention_page, "Attention tensor (.npy)")
    assert name == "attention.npy"
    weights = _npy(data)
    expected = es.attention(encoder, TEXT).weights
    assert weights.dtype == np.float32 and weights.shape == expected.shape
    np.testing.assert_allclose(weights, expected, atol=1e-6)


@pytest.mark.parametrize("head", [2, "mean"])
def test_selected_head_csv(attention_page, encoder, head):
    # Bug: the CSV of another head than the one drawn, or rows and columns swapped.
    attention_page.session_state["head"] = head  # what the map's head buttons set
    attention_page.run()
    layer, shown, drawn, _ = main_heatmap(attention_page)
    assert shown == str(head)
    name, data = download(attention_page, "Selected head (.csv)")
    assert name == f"attention_L{layer}_H{shown}.csv"
    frame = _csv(data, index_col=0)
    res = es.attention(encoder, TEXT)
    labels = [f"{i}:{t}" for i, t in enumerate(res.tokens)]  # WordPiece tokens need no cleaning
    assert list(frame.index) == labels and list(frame.columns) == labels
    expected = res.weights[layer].mean(axis=0) if shown == "mean" else res.weights[layer, int(shown)]
    np.testing.assert_allclose(frame.to_numpy(float), expected, atol=1e-6)
    np.testing.assert_allclose(frame.to_numpy(float), drawn, atol=2e-5)  # the CSV is the map as drawn


def test_selected_head_csv_leaves_filtered_pairs_empty(encoder):
    # Bug: the CSV holding cells the map greys out under "A → B only" (the export and the view disagree).
    text, pair = "The bank was closed.", "It opens Monday."
    at = opened("attention", {"text": text, "pair": pair, "layer": "1", "head": "5"})
    at.radio(key="direction").set_value("A → B only").run()
    frame = pd.read_csv(io.BytesIO(download(at, "Selected head (.csv)")[1]), index_col=0)
    res = es.attention(encoder, text, pair)
    seq = np.array([-1 if s is None else s for s in res.sequence_ids])
    keep = (seq[:, None] == 0) & (seq[None, :] == 1)
    z = frame.to_numpy(float)
    assert np.array_equal(np.isfinite(z), keep)
    np.testing.assert_allclose(z[keep], res.weights[1, 5][keep], atol=1e-6)


def test_selected_head_csv_follows_merged_words(attention_page, encoder):
    # Bug: the CSV exported from the raw tokens while the heatmap shows merged words (labels and values disagree).
    attention_page.session_state["head"] = 4
    attention_page.toggle(key="merge").set_value(True).run()
    layer = int(attention_page.slider(key="layer").value)
    frame = _csv(download(attention_page, "Selected head (.csv)")[1], index_col=0)
    raw = es.attention(encoder, TEXT)
    merged = es.merge_word_pieces(raw)
    assert len(merged.tokens) < len(raw.tokens)
    assert list(frame.index) == [f"{i}:{t}" for i, t in enumerate(merged.tokens)]
    np.testing.assert_allclose(frame.to_numpy(float), merged.weights[layer, 4], atol=1e-6)
    attention_page.toggle(key="merge").set_value(False).run()


@pytest.fixture(scope="module")
def embeddings_page():
    at = opened("embeddings")
    at.selectbox(key="method").set_value("pca").run()
    no_exceptions(at)
    return at


def test_projection_csv(embeddings_page, encoder):
    # Bug: coordinates exported in another order than the texts, or labels shifted by one row.
    name, data = download(embeddings_page, "Projected points (.csv)")
    assert name == "projection.csv"
    frame = _csv(data)
    assert list(frame.columns) == ["dim1", "dim2", "text", "label"]
    texts, labels = map(list, zip(*corpora.CORPORA[embeddings_page.selectbox(key="example").value], strict=True))
    assert list(frame["text"]) == texts and list(frame["label"]) == labels
    expected = es.project(es.embed(encoder, texts), "pca", 2, seed=int(embeddings_page.number_input(key="seed").value))
    np.testing.assert_allclose(frame[["dim1", "dim2"]].to_numpy(float), expected, atol=1e-5)


def test_embeddings_npy(embeddings_page, encoder):
    # Bug: the export holding the projected coordinates, or unnormalised / float64 vectors.
    name, data = download(embeddings_page, "Embeddings (.npy)")
    assert name == "embeddings.npy"
    vectors = _npy(data)
    texts = [t for t, _ in corpora.CORPORA[embeddings_page.selectbox(key="example").value]]
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, es.embed(encoder, texts), atol=1e-5)


def test_csv_formula_injection_is_neutralised():
    # Bug: a cell starting with = + - @ exported as it is, so a spreadsheet runs it as a formula; or the guard
    # touching ordinary cells.
    hostile = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1:A2)", "A plain sentence."]
    labels = ["=cmd|' /C calc'!A0", "plain", "+x", "-y", "@z"]
    upload = pd.DataFrame({"text": hostile, "label": labels}).to_csv(index=False)
    at = opened("embeddings")
    at.radio(key="source").set_value("CSV upload").run()
    at.file_uploader(key="csv_upload").set_value(("h.csv", upload.encode(), "text/csv")).run()
    at.selectbox(key="label_col").set_value("label")
    at.selectbox(key="method").set_value("pca").run()
    no_exceptions(at)
    frame = _csv(download(at, "Projected points (.csv)")[1], dtype=str)

    def guarded(cell: str) -> str:
        return "'" + cell if cell[:1] in "=+-@" else cell

    assert list(frame["text"]) == [guarded(t) for t in hostile]
    assert list(frame["label"]) == [guarded(lab) for lab in labels]
    assert frame["text"].iloc[-1] == "A plain sentence." and frame["label"].iloc[1] == "plain"
