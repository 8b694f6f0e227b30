"""`es.faithfulness.image` and `image_methods` on the real ViT-Ti/16 and the two sample photos; tiny random CLIP for
the caption path (plumbing only). Each test names the bug it catches; re-runs are written out here with numpy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_image

import encoderscope as es
from tests import vision_fixtures as vf

PHOTOS = {name: Image.fromarray(load_sample_image(name)) for name in ("china.jpg", "flower.jpg")}
STEPS, SEEDS = 6, 3
PATCHES = 80  # 7 × 10 patches for the 640 × 427 photos: a quarter of the square input's tokens


@pytest.fixture(scope="module")
def explained(vit):
    """{photo: (ImageRelevance, {method: Curves})}: aspect kept, at most PATCHES patches (a fast test)."""
    out = {}
    for name, photo in PHOTOS.items():
        rel = es.explain_image(vit, photo, max_patches=PATCHES)
        out[name] = (rel, es.faithfulness.image_methods(vit, rel, steps=STEPS, seeds=SEEDS))
    return out


def _probability(vit, rel, removed: list[int]) -> float:
    """The class probability with the `removed` patches set to the processor's mean colour, written out here."""
    proc = vit.processor
    arr = np.asarray(rel.image, np.float32).copy()  # [H, W, 3] in 0..255
    p, cols = rel.patch_size, rel.grid[1]
    mean = np.asarray(proc.image_mean, np.float32) / proc.rescale_factor
    for index in removed:
        r, c = divmod(index, cols)
        arr[r * p : (r + 1) * p, c * p : (c + 1) * p] = mean
    x = (arr * proc.rescale_factor - np.asarray(proc.image_mean)) / np.asarray(proc.image_std)
    with torch.inference_mode():
        logits = vit.classifier(pixel_values=torch.tensor(x.transpose(2, 0, 1)[None], dtype=torch.float32),
                                interpolate_pos_encoding=True).logits
    return float(logits[0].softmax(-1)[rel.target])


def test_first_point_is_the_class_probability(explained):
    # Bug: step 0 blanks a patch, or the curve reads another class.
    for rel, methods in explained.values():
        c = methods["relevance"]
        assert c.deletion[0] == pytest.approx(rel.probability, abs=1e-5)
        assert c.insertion[-1] == pytest.approx(rel.probability, abs=1e-5)
        assert c.counts[-1] == rel.map.size and len(c.counts) == STEPS + 1
        assert c.measure == "probability" and c.unit == "patch"


def test_one_step_equals_an_independent_rerun(vit, explained):
    # Bugs: rows and columns swapped, the lowest patches blanked, a blanked patch in normalised 0 of the wrong space.
    rel, methods = explained["flower.jpg"]
    c = methods["relevance"]
    ranked = np.argsort(-rel.map.ravel(), kind="stable")
    for s in (1, 3):
        k = int(c.counts[s])
        assert c.deletion[s] == pytest.approx(_probability(vit, rel, ranked[:k].tolist()), abs=1e-4)
        assert c.insertion[s] == pytest.approx(_probability(vit, rel, ranked[k:].tolist()), abs=1e-4)


def test_image_equals_the_relevance_row_of_image_methods(vit, explained):
    # Bug: `image` and the comparison disagree (different random orders or pictures).
    rel, methods = explained["china.jpg"]
    single = es.faithfulness.image(vit, PHOTOS["china.jpg"], rel, steps=STEPS, seeds=SEEDS)
    np.testing.assert_allclose(single.deletion, methods["relevance"].deletion, atol=1e-6)
    np.testing.assert_allclose(single.random, methods["rollout"].random, atol=1e-6)


def test_relevance_beats_random_on_both_photos_and_its_reverse_does_not(vit, explained):
    # Bugs: ascending order, the map transposed, random orders that follow the map.
    for name, (rel, methods) in explained.items():
        real = methods["relevance"]
        margin = real.area_random - real.area_deletion
        assert margin > 0.1 * rel.probability, (name, real.area_deletion, real.area_random)
        reverse = es.faithfulness.image(vit, None, dataclasses.replace(rel, map=-rel.map), steps=STEPS, seeds=SEEDS)
        assert reverse.area_deletion > real.area_deletion + margin, name
        assert real.area_random - reverse.area_deletion < margin / 2, name


def test_a_shuffled_map_does_not_beat_random_by_the_real_margin(vit, explained):
    rel, methods = explained["flower.jpg"]
    real = methods["relevance"]
    margin = real.area_random - real.area_deletion
    rng = np.random.default_rng(3)
    shuffled = dataclasses.replace(rel, map=rng.permutation(rel.map.ravel()).reshape(rel.grid))
    c = es.faithfulness.image(vit, None, shuffled, steps=STEPS, seeds=SEEDS)
    assert real.area_random - c.area_deletion < margin / 2


def test_attention_maps_are_the_cls_row_and_rollout(vit, explained):
    # Bugs: the [CLS] column instead of its row, the first layer instead of the last, the prefix left in.
    rel, _ = explained["china.jpg"]
    maps = es.faithfulness.attention_maps(vit, rel)
    proc = vit.processor
    x = (np.asarray(rel.image, np.float32) * proc.rescale_factor - proc.image_mean) / proc.image_std
    with torch.inference_mode():
        att = vit.classifier(pixel_values=torch.tensor(x.transpose(2, 0, 1)[None], dtype=torch.float32),
                             output_attentions=True, interpolate_pos_encoding=True).attentions
    W = np.stack([a[0].numpy() for a in att])  # [L, H, T, T]
    np.testing.assert_allclose(maps["cls_attention"].ravel(), W[-1].mean(0)[0, 1:], atol=1e-6)
    np.testing.assert_allclose(maps["rollout"].ravel(), es.rollout(W)[0, 1:], atol=1e-6)
    np.testing.assert_allclose(maps["relevance"], rel.map)


def test_bad_input(vit, explained):
    rel, _ = explained["china.jpg"]
    with pytest.raises(es.UserFacingError, match="map"):
        es.faithfulness.image(vit, None, dataclasses.replace(rel, map=rel.map[:3]))
    with pytest.raises(es.UserFacingError, match="caption"):
        es.faithfulness.image(vit, None, dataclasses.replace(rel, target="a dog"))


def test_clip_caption_curve_starts_at_the_cosine(tmp_path):
    # Plumbing on a tiny random CLIP (random weights: no claim about faithfulness).
    clip = es.load_clip(str(vf.tiny_clip(tmp_path / "clip")))
    photo = vf.photo(64, 64)
    rel = es.explain_image(clip, photo, "a photo of a cat", square=True)
    c = es.faithfulness.image(clip, photo, rel, steps=3, seeds=2)
    sim = es.clip_similarity(clip, [rel.image], ["a photo of a cat"])
    assert c.measure == "cosine"
    assert c.deletion[0] == pytest.approx(float(sim.cosine[0, 0]), abs=1e-4)
    with pytest.raises(es.UserFacingError, match="class"):
        es.faithfulness.image(clip, photo, dataclasses.replace(rel, target=3))
