"""es.compare on the other kinds of model: a causal decoder (SmolLM2, real), an image encoder (ViT-Ti, real, on
crops of two real photos), a [CLS]-pooled sentence-transformers folder, and models it must refuse."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_image

import encoderscope as es
from encoderscope.models import LoadedModel
from tests.unit.test_attribution_similarity import cls_model  # noqa: F401 - the shared [CLS]-pooled fixture

TEXTS = [
    "The river flooded the valley after a week of rain.",
    "She sold her shares before the market closed.",
    "A small cat slept on the warm windowsill.",
    "The orchestra tuned up before the concert began, and the hall slowly went quiet.",
    "Bring an umbrella.",
    "Parliament passed the budget late on Tuesday night after a long debate.",
]


def crops(n_each: int = 4) -> list[Image.Image]:
    photos = [Image.fromarray(load_sample_image(name)) for name in ("china.jpg", "flower.jpg")]
    return [p.crop((40 * i, 30 * i, 40 * i + 300, 30 * i + 300)) for p in photos for i in range(n_each)]


def test_decoder_features_are_masked_means_whatever_the_batch(decoder_model, encoder):
    # Bug caught: left/right padding read by a causal model, the LM head's logits instead of hidden states.
    feats = es.compare.layer_features(decoder_model, TEXTS)
    L = decoder_model.num_layers
    assert feats.shape == (L + 1, len(TEXTS), decoder_model.config.hidden_size)
    alone = es.hidden_states(decoder_model, TEXTS[4], mask="causal")  # [L+1, T, D], one text, no padding
    np.testing.assert_allclose(feats[:, 4], alone.mean(axis=1), rtol=1e-3, atol=2e-3)
    one_by_one = es.compare.layer_features(decoder_model, TEXTS, token_budget=1)
    np.testing.assert_allclose(feats, one_by_one, rtol=1e-3, atol=2e-3)
    sim = es.compare.layer_similarity(encoder, decoder_model, TEXTS, metric="cka")
    assert sim.matrix.shape == (7, L + 1) and np.isfinite(sim.matrix).all()
    assert ((sim.matrix >= 0) & (sim.matrix <= 1)).all()


def test_image_encoder_self_map_reads_the_cls_token(vit):
    images = crops()
    feats = es.compare.layer_features(vit, images)
    assert es.compare.pooling_name(vit) == "cls_token"
    assert feats.shape == (vit.num_layers + 1, len(images), vit.config.hidden_size)
    pixels = vit.processor(images=images[2], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        hidden = vit.model(pixel_values=pixels, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(feats[:, 2], torch.stack([h[0, 0] for h in hidden]).numpy(), atol=1e-4)
    sim = es.compare.layer_similarity(vit, vit, images, metric="cka")
    np.testing.assert_allclose(np.diag(sim.matrix)[1:], 1.0, atol=1e-9)
    # layer 0's [CLS] is the same learned vector for every image: no similarity to speak of, and a note says so
    assert (sim.matrix[0] == 0).all() and any("Layer 0 of model a" in n for n in sim.notes)
    u = es.compare.untrained(vit)
    assert u.classifier is None and u.labels == () and es.compare.is_untrained(u)
    base = es.compare.similarity_matrix(feats, es.compare.layer_features(u, images), "cka")
    assert base.matrix.shape == sim.matrix.shape


def test_cls_pooled_sentence_transformer_uses_the_first_token(cls_model):  # noqa: F811
    feats = es.compare.layer_features(cls_model, TEXTS[:4])
    assert es.compare.pooling_name(cls_model) == "cls"
    hidden = es.hidden_states(cls_model, TEXTS[1])
    np.testing.assert_allclose(feats[:, 1], hidden[:, 0], atol=1e-5)


class _NoHidden(torch.nn.Module):
    """A model that answers without hidden states (as a model built without them would)."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(model_type="none", num_hidden_layers=1, num_attention_heads=1)
        self.weight = torch.nn.Parameter(torch.zeros(1))

    @property
    def base_model(self):
        return self

    def forward(self, **kwargs):
        return SimpleNamespace(hidden_states=None, last_hidden_state=None)


def test_models_without_layers_are_refused(encoder):
    bare = LoadedModel(_NoHidden(), encoder.tokenizer, "no-hidden-states", "encoder", "local")
    with pytest.raises(es.UserFacingError, match="no hidden states"):
        es.compare.layer_features(bare, TEXTS)
    vae_like = LoadedModel(_NoHidden(), None, "a VAE", "vae", "local")
    with pytest.raises(es.UserFacingError, match="not a text encoder"):
        es.compare.layer_similarity(vae_like, encoder, TEXTS)
