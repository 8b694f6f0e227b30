"""Sentence pooling and the length caps: which vector a model's own config asks for, and what a truly long
input is cut to. References come from sentence-transformers itself or from the tokenizer, never from
encoderscope's own pooling code."""

import json
import shutil

import numpy as np
import pytest

import encoderscope as es
from encoderscope.embeddings import pooling_of
from encoderscope.models import bundled_encoder_path
from tests.conftest import tiny_bert

TINY_MAX_SEQ = 16
WORDS = (
    "the river bank was steep and muddy after the storm so we walked along the path until the light faded "
    "and the water rose over the stones while birds called from the trees on the far side of the valley"
).split()
LONG_TEXT = " ".join(WORDS[i % len(WORDS)] for i in range(1200))  # ~1200 tokens: past every cap
SENTENCES = ["The bank was closed.", "We sat on the bank of the river.", "a much longer sentence " * 10]


def _sentence_transformer_folder(folder, cls: bool):
    """A sentence-transformers folder (tiny random BERT) whose 1_Pooling/config.json picks [CLS] or mean."""
    tiny_bert(folder)
    src = bundled_encoder_path()
    shutil.copy(src / "modules.json", folder / "modules.json")
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": TINY_MAX_SEQ}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 16,
        "pooling_mode_cls_token": cls,
        "pooling_mode_mean_tokens": not cls,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }))
    (folder / "2_Normalize").mkdir()
    return folder


@pytest.fixture(scope="module")
def cls_model(tmp_path_factory):
    return es.load_encoder(str(_sentence_transformer_folder(tmp_path_factory.mktemp("cls"), cls=True)))


@pytest.fixture(scope="module")
def mean_model(tmp_path_factory):
    return es.load_encoder(str(_sentence_transformer_folder(tmp_path_factory.mktemp("mean"), cls=False)))


def _reference(model, texts):
    """sentence-transformers' own embedding of `texts` from the same folder (its pooling, its length cap)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model.path, device="cpu").encode(texts, normalize_embeddings=True)


def _cosines(a, b):
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_cls_pooling_is_detected_from_the_pooling_config(cls_model):
    assert pooling_of(cls_model) == es.embeddings.Pooling("cls", TINY_MAX_SEQ)


def test_mean_pooling_is_detected_from_the_pooling_config(mean_model):
    assert pooling_of(mean_model) == es.embeddings.Pooling("mean", TINY_MAX_SEQ)


def test_explicit_pooling_overrides_the_config(cls_model):
    assert pooling_of(cls_model, "mean").mode == "mean"


def test_plain_transformers_folder_means_and_keeps_the_model_limit(tmp_path):
    plain = es.load_encoder(str(tiny_bert(tmp_path)))  # no modules.json: not a sentence-transformers folder
    assert pooling_of(plain) == es.embeddings.Pooling("mean", 512)


@pytest.mark.parametrize("fixture", ["cls_model", "mean_model"])
def test_embed_matches_sentence_transformers(fixture, request):
    """The detected pooling is the one used: [CLS] and mean vectors of a random model are far apart,
    so the wrong one fails; the long sentence checks the max_seq_length cap of 16 tokens too."""
    model = request.getfixturevalue(fixture)
    texts = SENTENCES + [LONG_TEXT]
    ours = es.embed(model, texts)
    assert _cosines(ours, _reference(model, texts)).min() > 0.9999


def test_cls_and_mean_pooling_give_different_vectors(cls_model):
    cls = es.embed(cls_model, SENTENCES, pooling="cls")
    mean = es.embed(cls_model, SENTENCES, pooling="mean")
    assert _cosines(cls, mean).max() < 0.99


def _prefix(tokenizer, text, n_tokens):
    """The text of the first `n_tokens` tokens (special tokens excluded)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    prefix = tokenizer.decode(ids[:n_tokens])
    assert len(tokenizer(prefix, add_special_tokens=False)["input_ids"]) == n_tokens
    return prefix


def test_long_sentence_is_embedded_up_to_max_seq_length(encoder):
    """all-MiniLM-L6-v2 reads 256 tokens (sentence_bert_config), not its 512 positions."""
    assert len(encoder.tokenizer(LONG_TEXT)["input_ids"]) > 1000
    full = es.embed(encoder, [LONG_TEXT])
    assert np.isfinite(full).all() and np.linalg.norm(full) == pytest.approx(1, abs=1e-5)
    first_256 = es.embed(encoder, [_prefix(encoder.tokenizer, LONG_TEXT, 254)])  # + [CLS] and [SEP]
    assert _cosines(full, first_256)[0] > 0.9999
    assert _cosines(full, _reference(encoder, [LONG_TEXT]))[0] > 0.999
    # Reading all 512 positions would give a measurably different vector (mean of the 512 token states).
    import torch

    inputs = encoder.tokenizer(LONG_TEXT, truncation=True, max_length=512, return_tensors="pt")
    with torch.inference_mode():
        first_512 = encoder.model(**inputs).last_hidden_state[0].mean(0).numpy()[None]
    assert _cosines(full, first_512)[0] < 0.999


def test_long_sentence_attention_is_cut_to_the_model_limit(encoder):
    full = encoder.tokenizer.tokenize(LONG_TEXT)
    res = es.attention(encoder, LONG_TEXT)
    assert res.tokens == ["[CLS]", *full[:510], "[SEP]"]
    assert res.truncated and res.n_input_tokens == len(full) + 2
    assert res.weights.shape == (6, 12, 512, 512) and np.isfinite(res.weights).all()
    np.testing.assert_allclose(res.weights.sum(-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(es.rollout(res).sum(-1), 1.0, atol=1e-4)
