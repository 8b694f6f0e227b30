"""CLIP and SigLIP similarity: the model's own logits, the right probability for each family, and caption input."""

import numpy as np
import pytest
import torch

from encoderscope.errors import UserFacingError
from encoderscope.models import ModelLoadError
from encoderscope.vision import MAX_IMAGES, MAX_TEXTS, VisionError, apply_template, clip_similarity, load_clip
from encoderscope.vision.clip import modality_gap
from tests import vision_fixtures as vf

CAPTIONS = ["a photo of a cat", "a red car parked in the street", "two birds over the sea"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    return {
        "clip": load_clip(str(vf.tiny_clip(root / "clip"))),
        "siglip": load_clip(str(vf.tiny_siglip(root / "siglip"))),
        "vit_folder": vf.tiny_vit(root / "vit"),
    }


def images():
    return [vf.photo(48, 32, seed=0), vf.photo(40, 40, seed=1), vf.photo(32, 64, seed=2).convert("L")]


def transformers_logits(clip, pictures, texts, padding):
    """The documented transformers usage: processor + tokenizer, then the model's forward."""
    pixel_values = clip.processor(images=[p.convert("RGB") for p in pictures], return_tensors="pt")["pixel_values"]
    tokens = clip.tokenizer(texts, padding=padding, truncation=True, return_tensors="pt")
    inputs = {"pixel_values": pixel_values, **tokens}
    with torch.inference_mode():
        return clip.model(**{k: v.to(clip.device) for k, v in inputs.items()}).logits_per_image.cpu().numpy()


def test_clip_probs_are_the_softmax_of_the_models_own_logits(models):
    clip = models["clip"]
    s = clip_similarity(clip, images(), CAPTIONS)
    logits = transformers_logits(clip, images(), CAPTIONS, padding=True)
    np.testing.assert_allclose(s.logits, logits, atol=1e-5)
    np.testing.assert_allclose(s.probs, torch.from_numpy(logits).softmax(dim=1).numpy(), atol=1e-5)
    np.testing.assert_allclose(s.probs.sum(axis=1), 1.0, atol=1e-6)
    assert s.cosine.shape == s.probs.shape == (3, 3) and s.logit_bias is None


def test_siglip_probs_are_the_sigmoid_of_logits_with_bias(models):
    clip = models["siglip"]
    s = clip_similarity(clip, images(), CAPTIONS)
    logits = transformers_logits(clip, images(), CAPTIONS, padding="max_length")
    np.testing.assert_allclose(s.logits, logits, atol=1e-5)
    np.testing.assert_allclose(s.probs, 1 / (1 + np.exp(-logits)), atol=1e-5)
    # by hand from the model's parameters: cosine · exp(logit_scale) + logit_bias (the fixture sets bias −1.5)
    scale = float(clip.model.logit_scale.detach().exp())
    np.testing.assert_allclose(s.logits, s.cosine * scale - 1.5, atol=1e-4)
    assert s.logit_bias == pytest.approx(-1.5)


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_embeddings_are_unit_vectors_and_cosine_is_their_product(models, family):
    s = clip_similarity(models[family], images()[:2], CAPTIONS[:2])
    np.testing.assert_allclose(np.linalg.norm(s.image_embeds, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(s.text_embeds, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(s.cosine, s.image_embeds @ s.text_embeds.T, atol=1e-6)
    gap = np.linalg.norm(s.image_embeds.mean(0) - s.text_embeds.mean(0))
    assert modality_gap(s) == pytest.approx(gap)


def test_long_captions_are_flagged_as_truncated(models):
    s = clip_similarity(models["clip"], images()[:1], ["cat", "a very long caption " * 5])
    assert s.truncated == (False, True) and s.logits.shape == (1, 2)


def test_apply_template_substitutes_plainly():
    assert apply_template("a photo of {}.", ["cat", " dog "]) == ["a photo of cat.", "a photo of dog."]
    assert apply_template("{}", ["{0} braces"]) == ["{0} braces"]  # not str.format: labels stay as typed
    for bad in ("a photo of", "{} and {}", "a photo of {0}"):
        with pytest.raises(VisionError, match="exactly one"):
            apply_template(bad, ["cat"])


@pytest.mark.parametrize(
    "pictures, texts, match",
    [
        ([], ["cat"], "at least one image"),
        ("images", [], "at least one caption"),
        ("images", ["  ", ""], "at least one caption"),
        ("images", [f"label {i}" for i in range(MAX_TEXTS + 1)], f"at most {MAX_TEXTS}"),
        ([vf.photo()] * (MAX_IMAGES + 1), ["cat"], f"at most {MAX_IMAGES}"),
        ([b"not an image"], ["cat"], "not an image format"),
        ("images", [3], "must be text"),
    ],
)
def test_bad_batches_get_a_clear_message(models, pictures, texts, match):
    pictures = images() if pictures == "images" else pictures
    with pytest.raises(UserFacingError, match=match):
        clip_similarity(models["clip"], pictures, texts)


def test_an_image_encoder_is_not_a_clip_model(models):
    with pytest.raises(ModelLoadError, match="needs a CLIP or SigLIP model with both towers"):
        load_clip(str(models["vit_folder"]))
