"""Sentence and token embeddings on the real bundled MiniLM."""

import numpy as np
import pytest

import encoderscope as es
from encoderscope import corpora, embeddings


@pytest.fixture(scope="module")
def senses():
    return [t for t, _ in corpora.WORD_SENSES], [label for _, label in corpora.WORD_SENSES]


def test_embed_matches_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    texts = [t for t, _ in corpora.TOPICS] + ["short", "a much longer sentence " * 40]
    ours = es.embed(encoder, texts)
    reference = SentenceTransformer(encoder.path, device="cpu").encode(texts, normalize_embeddings=True)
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * reference).sum(1).min() > 0.999


def test_cls_pooling_differs_and_is_normalised(encoder):
    mean = es.embed(encoder, ["The bank was closed."], pooling="mean")
    cls = es.embed(encoder, ["The bank was closed."], pooling="cls")
    assert np.linalg.norm(cls) == pytest.approx(1, abs=1e-5) and (mean * cls).sum() < 0.999
    with pytest.raises(ValueError):
        es.embed(encoder, ["x"], pooling="max")


def test_layer0_is_static_and_contexts_split(encoder, senses):
    texts, _ = senses
    occ = embeddings.word_occurrences(encoder, texts, "bank")
    assert occ.count == 12 and occ.vectors.shape == (7, 12, 384)
    np.testing.assert_allclose(occ.vectors[0], np.broadcast_to(occ.vectors[0, :1], occ.vectors[0].shape), atol=1e-6)
    sim = embeddings.self_similarity(occ.vectors)
    assert sim[0] == pytest.approx(1.0, abs=1e-6)
    assert sim[-1] < sim[0] - 0.1  # contextual: occurrences spread out by the last layer


def test_word_pieces_are_averaged(encoder):
    occ = embeddings.word_occurrences(encoder, ["Echolocation helps bats.", "They study echolocation."], "echolocation")
    assert occ.count == 2 and occ.vectors.shape[1] == 2


def test_word_errors(encoder, senses):
    with pytest.raises(ValueError, match="appears in none.*more than once: bank, spring"):
        embeddings.word_occurrences(encoder, senses[0], "zebra")
    with pytest.raises(ValueError, match="single word"):
        embeddings.word_occurrences(encoder, senses[0], "two words")


def test_anisotropy_baseline(encoder, senses):
    base = embeddings.anisotropy(encoder, senses[0])
    assert base.shape == (7,) and np.isfinite(base).all() and (base < 0.9).all()


def test_paraphrase_retrieval(encoder):
    texts = [t for t, _ in corpora.PARAPHRASES]
    pairs = [label for _, label in corpora.PARAPHRASES]
    X = es.embed(encoder, texts)
    for i in range(len(texts)):
        idx, _ = embeddings.nearest(X[i], X, k=2)
        top = idx[1] if idx[0] == i else idx[0]
        assert pairs[top] == pairs[i], (texts[i], texts[top])


def test_nearest_orders_by_cosine():
    X = np.eye(3, dtype=np.float32)
    idx, scores = embeddings.nearest(np.array([0.9, 0.1, 0], np.float32), X, k=5)
    assert idx.tolist()[:2] == [0, 1] and scores[0] > scores[1] and len(idx) == 3


def test_self_similarity_needs_two():
    assert np.isnan(embeddings.self_similarity(np.ones((3, 1, 4)))).all()
