"""Issue 24 §10: every pooling mode a sentence-transformers folder declares is reproduced by es.embed (the
reference is sentence-transformers' own encode on the same folder), or refused with a message."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import encoderscope as es
from encoderscope.errors import UserFacingError
from tests.conftest import tiny_bert

TEXTS = ["The bank was closed.", "We sat on the bank of the river for a long while.", "Short.",
         "a much longer sentence that goes on " * 4]


def st_folder(folder, mode, legacy: bool = False, dense: bool = False):
    """A sentence-transformers folder (tiny random BERT, then Pooling(mode), [Dense], Normalize) saved by
    sentence-transformers itself; `legacy` rewrites the pooling config in the old boolean-key format."""
    from sentence_transformers import SentenceTransformer, models

    word = models.Transformer(str(tiny_bert(folder / "bert")), max_seq_length=32)
    modules = [word, models.Pooling(word.get_embedding_dimension(), pooling_mode=mode)]
    if dense:
        modules.append(models.Dense(16, 8))
    SentenceTransformer(modules=[*modules, models.Normalize()], device="cpu").save(str(folder / "st"))
    if legacy:
        config = folder / "st" / "1_Pooling" / "config.json"
        keys = {"cls": "cls_token", "max": "max_tokens", "mean": "mean_tokens", "lasttoken": "lasttoken",
                "weightedmean": "weightedmean_tokens", "mean_sqrt_len_tokens": "mean_sqrt_len_tokens"}
        config.write_text(json.dumps({"word_embedding_dimension": 16,
                                      **{f"pooling_mode_{k}": k == keys[mode] for k in keys.values()}}))
    return folder / "st"


def reference(folder, texts):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True, batch_size=3)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("mode", ["max", "lasttoken", "weightedmean", "cls", "mean", "mean_sqrt_len_tokens"])
def test_embed_equals_the_models_own_encode(tmp_path, mode, legacy):
    # Bug: max, lasttoken and weightedmean folders were embedded with mean pooling (max: off by 0.34 in cosine),
    # and a folder in the newer `pooling_mode` format was always read as mean.
    folder = st_folder(tmp_path, mode, legacy)
    enc = es.load_encoder(str(folder))
    ours = es.embed(enc, TEXTS, batch_size=3)  # batches mix lengths: padding must not leak into any mode
    np.testing.assert_allclose(ours, reference(folder, TEXTS), atol=2e-5)


def test_explain_similarity_explains_the_max_pooled_cosine(tmp_path):
    # Bug: integrated gradients pooled with a mean, so its cosine was not the model's.
    enc = es.load_encoder(str(st_folder(tmp_path, "max")))
    a, b = TEXTS[:2]
    ex = es.explain_similarity(enc, a, b, steps=4)
    va, vb = reference(tmp_path / "st", [a, b])
    assert ex.method == "integrated_gradients" and ex.pooling == "max"
    assert ex.cosine == pytest.approx(float(va @ vb), abs=1e-5)


@pytest.mark.parametrize(
    "mode, dense, says",
    [(("cls", "mean"), False, "pools with cls + mean"), ("mean", True, "a Dense module after its pooling")],
)
def test_what_embed_cannot_reproduce_is_refused(tmp_path, mode, dense, says):
    enc = es.load_encoder(str(st_folder(tmp_path, mode, dense=dense)))
    with pytest.raises(UserFacingError, match=re.escape(says)):
        es.embed(enc, TEXTS)
