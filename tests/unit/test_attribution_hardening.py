"""Issue 24 §8 and §9: image relevance read where the classifier head reads, and the gradient explanations
inside a caller's torch.inference_mode()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import encoderscope as es
from tests.vision_fixtures import photo, tiny_clip, tiny_head, tiny_vit


def chefer_rows(enc, image, target: int) -> np.ndarray:
    """R `[T, T]` of the Chefer et al. rule, computed here from the classifier's own attentions and gradients."""
    from encoderscope.vision.patch_attention import prepare

    prep = prepare(enc, image, False)
    out = enc.classifier(pixel_values=torch.from_numpy(prep.pixel_values), output_attentions=True,
                         **({"interpolate_pos_encoding": True} if enc.interpolate else {}))
    grads = torch.autograd.grad(out.logits[0, target], out.attentions)
    T = out.attentions[0].shape[-1]
    R = np.eye(T)
    for A, G in zip(out.attentions, grads, strict=True):
        cam = np.maximum(A[0].detach().double().numpy() * G[0].double().numpy(), 0).mean(0)
        R = R + cam @ R
    return R


@pytest.mark.parametrize(
    "arch, row, expected",
    [
        ("Dinov2ForImageClassification", "[CLS] + mean patch", lambda R, p: (R[0] + R[p:].mean(0)) / 2),
        ("DeiTForImageClassificationWithTeacher", "[CLS] + [DIST]", lambda R, p: (R[0] + R[1]) / 2),
        ("DeiTForImageClassification", "[CLS]", lambda R, p: R[0]),
    ],
)
def test_relevance_reads_the_rows_the_head_reads(tmp_path, arch, row, expected):
    # Bug: only the [CLS] row was read, while DINOv2's head reads [CLS] joined with the mean patch token and
    # distilled DeiT averages its [CLS] and [DIST] heads.
    enc = es.load_image_encoder(tiny_head(tmp_path / "m", arch))
    image = photo(48, 32)
    rel = es.explain_image(enc, image, target=1)
    prefix = len(enc.prefix_names)
    want = np.maximum(expected(chefer_rows(enc, image, 1), prefix)[prefix:], 0).reshape(rel.grid)
    assert rel.row == row
    np.testing.assert_allclose(rel.map, want, rtol=1e-4, atol=1e-6)
    if row != "[CLS]":
        assert any("averages" in note for note in rel.notes)


def test_explain_image_inside_inference_mode(tmp_path):
    # Bug: "element 0 of tensors does not require grad" inside a caller's torch.inference_mode().
    enc = es.load_image_encoder(tiny_vit(tmp_path / "vit", classifier=True))
    clip = es.load_clip(tiny_clip(tmp_path / "clip"))
    image = photo()
    outside = es.explain_image(enc, image), es.explain_image(clip, image, "a red square")
    with torch.inference_mode():
        inside = es.explain_image(enc, image), es.explain_image(clip, image, "a red square")
    for a, b in zip(outside, inside, strict=True):
        np.testing.assert_allclose(b.map, a.map, rtol=1e-5, atol=1e-7)
        assert b.target == a.target and b.score == pytest.approx(a.score)
    np.testing.assert_allclose(inside[1].text_map, outside[1].text_map, rtol=1e-5, atol=1e-7)


def test_integrated_gradients_inside_inference_mode(encoder):
    # Bug: "Inference tensors cannot be saved for backward": the token ids were made in the caller's mode.
    a, b = "The cat sat on the mat.", "A dog slept on the rug."
    outside = es.explain_similarity(encoder, a, b, method="integrated_gradients", steps=8)
    with torch.inference_mode():
        inside = es.explain_similarity(encoder, a, b, method="integrated_gradients", steps=8)
    assert inside.method == "integrated_gradients"
    np.testing.assert_allclose(inside.scores_a, outside.scores_a, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(inside.scores_b, outside.scores_b, rtol=1e-5, atol=1e-7)
    assert np.abs(inside.scores_a).sum() > 0


@pytest.fixture
def gradient_bytes():
    from encoderscope import settings

    yield lambda n: settings.reload({"ENCODERSCOPE_IMAGE_GRADIENT_BYTES": str(n)})
    settings.reload()


def test_image_gradient_memory_is_bounded_in_bytes(tmp_path, gradient_bytes):
    # Bug (issue 24 §12c): max_image_patches was the only bound, so a deep, wide model kept gigabytes of
    # attention maps for the backward pass. Tiny ViT: 2 layers x 2 heads x 8 bytes = 32 bytes per T^2.
    enc = es.load_image_encoder(tiny_vit(tmp_path / "vit", classifier=True))
    image = photo(96, 64)
    full = es.explain_image(enc, image)
    assert full.grid == (4, 6)  # 24 patches + [CLS] when nothing binds
    gradient_bytes(32 * 11**2)  # T = 11 tokens: [CLS] + at most 10 patches
    rel = es.explain_image(enc, image)
    rows, cols = rel.grid
    assert rows * cols <= 10 and rel.map.shape == (rows, cols)
    assert 32 * (rows * cols + 1) ** 2 <= 32 * 11**2
    assert any("At most 10 patches" in note for note in rel.notes)
    with pytest.raises(es.VisionError, match="square input has 16 patches"):
        es.explain_image(enc, image, square=True)
    gradient_bytes(32 * 1)
    with pytest.raises(es.VisionError, match="do not fit"):
        es.explain_image(enc, image)
