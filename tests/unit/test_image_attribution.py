"""`es.classify` and `es.explain_image` (Chefer et al. 2021): the real ViT-Ti/16 from ../shared/models for what the
model says and why, hand-built tensors for the relevance rule, tiny random CLIP/SigLIP for the caption path.

Each test names the bug it catches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_image

import encoderscope as es
from encoderscope import vision
from encoderscope.attribution import image as attribution
from tests import vision_fixtures as vf
from tests.conftest import VIT_TINY

CHINA = Image.fromarray(load_sample_image("china.jpg"))
FLOWER = Image.fromarray(load_sample_image("flower.jpg"))
# ImageNet has no "temple": what a sensible classifier calls the scikit-learn photo of a Chinese temple by a lake
TEMPLE_LIKE = {"lakeside", "palace", "monastery", "bell cote", "castle", "pagoda", "boathouse", "stupa", "church"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("attribution")
    return {
        "vit": es.load_image_encoder(str(vf.tiny_vit(root / "vit"))),
        "vit_cls": es.load_image_encoder(str(vf.tiny_vit(root / "vit_cls", classifier=True))),
        "clip": es.load_clip(str(vf.tiny_clip(root / "clip"))),
        "siglip": es.load_clip(str(vf.tiny_siglip(root / "siglip"))),
    }


# --- the rule, by hand ------------------------------------------------------------------------------------------


def test_relevance_rule_by_hand():
    # Bugs: negatives kept (no clamp), the sum over heads instead of the mean, R·Ā instead of Ā·R, no identity.
    A1 = torch.tensor([[[0.5, 0.5], [1.0, 0.0]], [[1.0, 0.0], [0.5, 0.5]]])  # [H=2, T=2, T]
    G1 = torch.tensor([[[1.0, -1.0], [2.0, 0.0]], [[0.0, 0.0], [-4.0, 2.0]]])
    # head 0: G⊙A = [[0.5, -0.5], [2, 0]] -> [[0.5, 0], [2, 0]]; head 1: [[0, 0], [-2, 1]] -> [[0, 0], [0, 1]]
    cam1 = np.array([[0.25, 0.0], [1.0, 0.5]])
    R1 = np.eye(2) + cam1
    np.testing.assert_allclose(attribution.relevance([A1], [G1]).numpy(), R1, atol=1e-6)
    A2 = torch.tensor([[[0.0, 1.0], [0.5, 0.5]]])
    G2 = torch.tensor([[[0.0, 2.0], [1.0, 1.0]]])
    cam2 = np.array([[0.0, 2.0], [0.5, 0.5]])
    R2 = R1 + cam2 @ R1  # not R1 @ cam2: the later layer mixes what the earlier ones gathered
    np.testing.assert_allclose(attribution.relevance([A1, A2], [G1, G2]).numpy(), R2, atol=1e-6)
    assert not np.allclose(R2, R1 + R1 @ cam2)


# --- classify on the real ViT-Ti ------------------------------------------------------------------------------


def test_classify_names_the_sample_photos(vit):
    # Bugs: labels read from the wrong index (id2label off by one), the encoder without its head, probabilities
    # not a softmax over all classes.
    china = es.classify(vit, CHINA, k=5)
    flower = es.classify(vit, FLOWER, k=5)
    assert china[0][0] in TEMPLE_LIKE, china
    assert flower[0][0] == "daisy", flower
    for top in (china, flower):
        probs = [p for _, p in top]
        assert len(top) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_classify_square_is_the_checkpoints_own_evaluation(vit):
    # Bug: classify disagreeing with transformers' own processor and classifier on the checkpoint's 224 crop.
    from transformers import AutoImageProcessor, ViTForImageClassification

    processor = AutoImageProcessor.from_pretrained(str(VIT_TINY), backend="pil")
    model = ViTForImageClassification.from_pretrained(str(VIT_TINY)).eval()
    with torch.no_grad():
        probs = model(**processor(images=FLOWER, return_tensors="pt")).logits[0].softmax(-1).numpy()
    top = np.argsort(-probs)[:5]
    ours = es.classify(vit, FLOWER, k=5, square=True)
    assert [label for label, _ in ours] == [model.config.id2label[int(i)] for i in top]
    np.testing.assert_allclose([p for _, p in ours], probs[top], atol=1e-4)


def test_classify_without_a_head_says_so(tiny):
    # Bug: a bare encoder's random pooler or a crash passed off as classes.
    with pytest.raises(es.UserFacingError, match="no classification head"):
        es.classify(tiny["vit"], vf.photo())
    with pytest.raises(es.UserFacingError, match="no fixed classes"):
        es.classify(tiny["clip"], vf.photo())
    with pytest.raises(es.UserFacingError, match="positive whole number"):
        es.classify(tiny["vit_cls"], vf.photo(), k=0)
    assert len(es.classify(tiny["vit_cls"], vf.photo(), k=50)) == 3  # k beyond the classes: all of them


# --- explain_image on the real ViT-Ti ------------------------------------------------------------------------


def test_explained_score_is_the_models_logit_and_the_map_its_grid(vit):
    # Bugs: the map of another class than the one named, a score that is not the logit, a map with negative or
    # non-finite values, a map of the wrong shape for a non-square photo.
    rel = es.explain_image(vit, CHINA)
    res = es.image_attention(vit, CHINA)
    assert rel.grid == res.grid == (14, 20) and rel.map.shape == rel.grid and rel.map.dtype == np.float32
    assert np.isfinite(rel.map).all() and rel.map.min() >= 0 and rel.map.max() > 0
    assert rel.image.size == res.image.size and rel.row == "[CLS]"
    top_label, top_prob = es.classify(vit, CHINA, k=1)[0]
    assert rel.label == top_label and rel.probability == pytest.approx(top_prob, abs=1e-5)
    pixels = torch.from_numpy(vision.patch_attention.prepare(vit, CHINA, False).pixel_values)
    with torch.no_grad():
        logits = vit.classifier(pixel_values=pixels, interpolate_pos_encoding=True).logits[0]
    assert rel.target == int(logits.argmax()) and rel.score == pytest.approx(float(logits.max()), abs=1e-4)


def test_map_is_gradient_weighted_attention_computed_independently(vit):
    # Bug: plain attention rollout (no gradients) or gradients of another score passed off as relevance.
    from transformers import ViTForImageClassification

    model = ViTForImageClassification.from_pretrained(str(VIT_TINY), attn_implementation="eager").eval()
    rel = es.explain_image(vit, FLOWER, target=985)  # 985: daisy
    pixels = torch.from_numpy(vision.patch_attention.prepare(vit, FLOWER, False).pixel_values)
    out = model(pixel_values=pixels, output_attentions=True, interpolate_pos_encoding=True)
    grads = torch.autograd.grad(out.logits[0, 985], out.attentions)
    R = np.eye(out.attentions[0].shape[-1])
    for A, G in zip(out.attentions, grads, strict=True):
        cam = np.clip(A[0].detach().double().numpy() * G[0].double().numpy(), 0, None).mean(axis=0)
        R = R + cam @ R
    np.testing.assert_allclose(rel.map, R[0, 1:].reshape(rel.grid), rtol=1e-3, atol=1e-6)


def test_target_by_label_and_out_of_range(vit):
    # Bugs: a class picked on the page explained as the top class; an out-of-range index crashing.
    by_index = es.explain_image(vit, FLOWER, target=738)  # 738: pot
    by_label = es.explain_image(vit, FLOWER, target="pot")
    assert by_index.target == by_label.target == 738 and by_index.label == vit.labels[738] == "pot"
    np.testing.assert_array_equal(by_index.map, by_label.map)
    top = es.explain_image(vit, FLOWER)
    assert not np.allclose(top.map, by_index.map)  # the map depends on the class explained
    far = es.explain_image(vit, FLOWER, target=5000)
    assert far.target == top.target and any("out of range" in note for note in far.notes)
    with pytest.raises(es.UserFacingError, match="no class named"):
        es.explain_image(vit, FLOWER, target="no such class")


@pytest.mark.slow
@pytest.mark.parametrize("photo", [CHINA, FLOWER], ids=["china", "flower"])
def test_deletion_most_relevant_first_drops_the_class_faster_than_random(vit, photo):
    # Bug: a map that does not point at what the model uses (flipped, transposed, another class, noise):
    # deleting its "most relevant" patches first would do no better than a random order.
    rel = es.explain_image(vit, photo)
    relevant = attribution.deletion_curve(vit, rel, np.argsort(-rel.map.ravel()), steps=8)
    rng = np.random.default_rng(0)
    random = [attribution.deletion_curve(vit, rel, rng.permutation(rel.map.size), steps=8).mean() for _ in range(2)]
    assert relevant[0] == pytest.approx(rel.probability, abs=1e-4)  # step 0: nothing deleted yet
    assert relevant.mean() < 0.6 * np.mean(random), (relevant.mean(), random)
    transposed = np.argsort(-rel.map.T.ravel())  # a plausible indexing bug: rows and columns swapped
    assert relevant.mean() < attribution.deletion_curve(vit, rel, transposed, steps=8).mean()


@pytest.mark.slow
def test_deletion_curve_is_the_faithfulness_engines_deletion_curve(vit):
    # Bug: the old deletion_curve and the engine drifting apart (another blanking, another picture, another
    # class), so the docs' numbers and the page's curves would measure different things.
    rel = es.explain_image(vit, FLOWER, max_patches=80)
    engine = es.faithfulness.image(vit, FLOWER, rel, steps=6, seeds=1)
    order = np.argsort(-rel.map.ravel(), kind="stable")  # the engine's ranking: highest first, ties in place
    curve = attribution.deletion_curve(vit, rel, order, steps=6)
    assert curve.dtype == np.float32 and curve.shape == (7,)
    np.testing.assert_allclose(curve, engine.deletion, rtol=1e-5, atol=1e-6)
    assert curve[-1] == pytest.approx(engine.random[-1], abs=1e-6)  # everything blanked: every order agrees


# --- CLIP / SigLIP: a caption as the target ---------------------------------------------------------------------


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_caption_score_is_the_matrix_logit_and_words_get_relevance(tiny, family):
    # Bugs: the explained score not the image-text logit the similarity matrix shows; text relevance over the
    # wrong tokens (padding, special tokens); SigLIP read at a [CLS] row it does not have.
    clip = tiny[family]
    caption = "a photo of a cat"
    rel = es.explain_image(clip, CHINA, target=caption, square=True)
    sim = es.clip_similarity(clip, [CHINA], [caption])
    assert rel.score == pytest.approx(float(sim.logits[0, 0]), abs=1e-4)
    assert rel.map.shape == rel.grid == (4, 4) and rel.map.min() >= 0 and np.isfinite(rel.map).all()
    expected = clip.tokenizer.convert_ids_to_tokens(clip.tokenizer(caption)["input_ids"])
    special = set(clip.tokenizer.all_special_tokens)
    assert list(rel.text_tokens) == [t for t in expected if t not in special]
    assert rel.text_map.shape == (len(rel.text_tokens),) and rel.text_map.min() >= 0
    if family == "siglip":
        assert rel.row == "mean" and any("no [CLS]" in note for note in rel.notes)
        assert rel.probability == pytest.approx(float(sim.probs[0, 0]), abs=1e-5)
    else:
        assert rel.row == "[CLS]" and rel.probability is None


def test_caption_errors_and_cut_captions(tiny):
    # Bugs: a ClipModel explained without a caption; a caption over the tokenizer's limit failing or cut silently.
    with pytest.raises(es.UserFacingError, match="caption"):
        es.explain_image(tiny["clip"], CHINA)
    long = "a photo of a cat " * 20  # the tiny CLIP reads 24 tokens
    rel = es.explain_image(tiny["clip"], CHINA, target=long)
    assert any("cut to" in note for note in rel.notes)
    assert len(rel.text_tokens) <= 24


def test_aspect_preserving_caption_relevance_covers_the_whole_picture(tiny):
    # Bug: the CLIP path ignoring square=False (positions not interpolated: a crash or a square crop).
    rel = es.explain_image(tiny["clip"], vf.photo(64, 32), target="a red car")
    assert rel.grid == (4, 8) and rel.image.size == (64, 32)
