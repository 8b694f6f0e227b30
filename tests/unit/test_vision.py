"""Image encoders: patch attention, geometry, features and bad input.

Hand-built tensors check the arithmetic (patch_map, rollout, attention distance, overlay alignment); tiny random
ViT/DeiT/DINOv2/CLIP/SigLIP folders (tests/vision_fixtures.py) check the plumbing through the public loaders, against
an independent forward pass through transformers' own image processor.
"""

import io
import math
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

import encoderscope as es
from encoderscope import settings
from encoderscope.models import ModelLoadError
from encoderscope.vision import (
    ImageAttention,
    VisionError,
    attention_distance,
    image_attention,
    load_image_encoder,
    patch_map,
    patch_norms,
    pca_rgb,
    to_pixels,
)
from tests import vision_fixtures as vf


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision")
    return {
        "vit": vf.tiny_vit(root / "vit"),
        "vit_cls": vf.tiny_vit(root / "vit_cls", classifier=True),
        "deit": vf.tiny_deit(root / "deit"),
        "dinov2": vf.tiny_dinov2(root / "dinov2"),
        "dinov2_reg": vf.tiny_dinov2(root / "dinov2_reg", registers=4),
        "clip": vf.tiny_clip(root / "clip"),
        "siglip": vf.tiny_siglip(root / "siglip"),
        "bert": vf.tiny_bert_config(root / "bert"),
    }


@pytest.fixture(scope="module")
def encoders(folders):
    names = ("vit", "vit_cls", "deit", "dinov2", "dinov2_reg", "clip", "siglip")
    return {name: load_image_encoder(str(folders[name])) for name in names}


def hand_result(weights, grid, patch=4, prefix=("[CLS]",)) -> ImageAttention:
    """An ImageAttention around a hand-built `[L, H, T, T]` tensor and a blank picture of the grid's size."""
    rows, cols = grid
    tokens = [*prefix, *(f"{r},{c}" for r in range(rows) for c in range(cols))]
    return ImageAttention(
        tokens=tokens,
        weights=np.asarray(weights, np.float32),
        special=np.arange(len(tokens)) < len(prefix),
        prefix=len(prefix),
        grid=grid,
        patch_size=patch,
        image=Image.new("RGB", (cols * patch, rows * patch)),
    )


# --- arithmetic on hand-built tensors ---------------------------------------------------------------------------


def test_overlay_lights_exactly_the_attended_patch_box():
    """[CLS] attends only to patch (1, 2) of a 2×3 grid of 4 px patches: its 4×4 pixel box, and nothing else, lights."""
    T = 1 + 6
    w = np.zeros((1, 1, T, T))
    w[0, 0, :, 0] = 1.0
    w[0, 0, 0] = 0.0
    w[0, 0, 0, 1 + 1 * 3 + 2] = 1.0  # [CLS] -> patch (1, 2)
    w[0, 0, 1 + 0 * 3 + 1] = 0.0
    w[0, 0, 1 + 0 * 3 + 1, 1 + 1 * 3 + 0] = 1.0  # patch (0, 1) -> patch (1, 0)
    res = hand_result(w, (2, 3), patch=4)
    pixels = to_pixels(patch_map(res, 0, 0), res.patch_size)
    assert pixels.shape == (res.image.size[1], res.image.size[0]) == (8, 12)
    expected = np.zeros((8, 12))
    expected[4:8, 8:12] = 1.0  # rows 4-7 (second patch row), columns 8-11 (third patch column)
    np.testing.assert_array_equal(pixels, expected)
    by_patch = to_pixels(patch_map(res, 0, 0, query=(0, 1)), 4)
    assert np.argwhere(by_patch).min(axis=0).tolist() == [4, 0] and np.argwhere(by_patch).max(axis=0).tolist() == [7, 3]


def test_overlay_alignment_on_a_real_non_square_result(encoders):
    """The same one-hot query on a model's real 4×6 result: the lit box is where that patch's pixels are."""
    res = image_attention(encoders["vit"], vf.photo(60, 40))
    assert res.grid == (4, 6) and res.image.size == (48, 32)
    w = np.zeros_like(res.weights)
    w[..., 0] = 1.0
    w[:, :, 0, 0] = 0.0
    w[:, :, 0, res.token_index(3, 4)] = 1.0
    pixels = to_pixels(patch_map(replace(res, weights=w), 1, "mean"), res.patch_size)
    ys, xs = np.nonzero(pixels)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (24, 31, 32, 39)
    assert res.tokens[res.token_index(3, 4)] == "3,4"


def test_patch_map_heads_and_queries_against_hand_tensor():
    rng = np.random.default_rng(0)
    w = rng.random((2, 3, 7, 7))
    w /= w.sum(-1, keepdims=True)
    res = hand_result(w, (2, 3))
    np.testing.assert_allclose(patch_map(res, 1, 2), w[1, 2, 0, 1:].reshape(2, 3), rtol=1e-6)
    np.testing.assert_allclose(patch_map(res, 0, "mean"), w[0, :, 0, 1:].mean(0).reshape(2, 3), rtol=1e-6)
    np.testing.assert_allclose(patch_map(res, 0, 1, query=(1, 2)), w[0, 1, 6, 1:].reshape(2, 3), rtol=1e-6)
    np.testing.assert_allclose(patch_map(res, 0, 1, query=3), w[0, 1, 3, 1:].reshape(2, 3), rtol=1e-6)
    no_cls = hand_result(w[:, :, 1:, 1:], (2, 3), prefix=())  # SigLIP-like: mean over every query row
    np.testing.assert_allclose(patch_map(no_cls, 1, 0), w[1, 0, 1:, 1:].mean(0).reshape(2, 3), rtol=1e-6)
    with pytest.raises(VisionError, match="Layer 2"):
        patch_map(res, 2, 0)
    with pytest.raises(VisionError, match="Head 3"):
        patch_map(res, 0, 3)
    with pytest.raises(VisionError, match="outside the 2×3 grid"):
        patch_map(res, 0, 0, query=(2, 0))


def test_rollout_takes_an_image_result_and_matches_hand_computation():
    """Â = rownorm(mean_h A + I); R = Â2 Â1. Â1 = [[1, 0], [.25, .75]], Â2 = [[.5, .5], [.5, .5]]."""
    a1 = np.array([[1.0, 0.0], [0.5, 0.5]])
    a2 = np.array([[0.0, 1.0], [1.0, 0.0]])
    w = np.stack([np.stack([a1, a1]), np.stack([a2, a2])])  # [2 layers, 2 heads, 2, 2]
    res = hand_result(w, (1, 1))
    np.testing.assert_allclose(es.rollout(res), [[0.625, 0.375], [0.625, 0.375]], rtol=1e-6)


def test_attention_distance_on_a_2x3_grid_by_hand():
    """Patches of 10 px on a 2×3 grid. Head 0: patch (0,0) gives [CLS] 0.5, itself 0.25, patch (1,2) 0.25, so after
    dropping [CLS] and renormalising 0.5·d((0,0),(1,2)) = 0.5·10·√5; every other patch attends to itself (0).
    Head 1: every patch spreads uniformly over the 6 patches: the mean over the 36 ordered pairs of distances."""
    T = 7
    w = np.zeros((1, 2, T, T))
    for q in range(1, T):
        w[0, 0, q, q] = 1.0
    w[0, 0, 1] = 0.0
    w[0, 0, 1, [0, 1, 6]] = [0.5, 0.25, 0.25]
    w[0, 1, :, 1:] = 1 / 6
    res = hand_result(w, (2, 3), patch=10)
    head0 = 0.5 * 10 * math.sqrt(5) / 6
    unordered = 4 * 1 + 2 * 2 + 3 * 1 + 4 * math.sqrt(2) + 2 * math.sqrt(5)
    head1 = 10 * 2 * unordered / 36
    np.testing.assert_allclose(attention_distance(res), [[head0, head1]], rtol=1e-5)


# --- real forward passes on tiny random models --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, prefix",
    [
        ("vit", ["[CLS]"]),
        ("deit", ["[CLS]", "[DIST]"]),
        ("dinov2", ["[CLS]"]),
        ("dinov2_reg", ["[CLS]", "[REG0]", "[REG1]", "[REG2]", "[REG3]"]),
        ("clip", ["[CLS]"]),
        ("siglip", []),
    ],
)
def test_every_family_gives_named_tokens_rows_summing_to_one_and_the_seen_image(encoders, name, prefix):
    enc = encoders[name]
    res = image_attention(enc, vf.photo(50, 90))  # portrait: 32 px wide -> 4 columns, 57 px tall -> 7 rows
    rows, cols = res.grid
    assert (rows, cols) == (7, 4)
    assert res.tokens[: len(prefix)] == prefix and res.prefix == len(prefix)
    assert res.tokens[res.prefix :] == [f"{r},{c}" for r in range(rows) for c in range(cols)]
    assert res.weights.dtype == np.float32 and res.weights.shape == (2, 2, len(prefix) + 28, len(prefix) + 28)
    np.testing.assert_allclose(res.weights.sum(-1), 1.0, atol=1e-5)
    assert res.image.size == (cols * res.patch_size, rows * res.patch_size) == (32, 56)
    assert res.features.shape == res.hidden.shape == (len(res.tokens), 32)


def test_square_mode_is_the_processors_own_preprocessing(encoders):
    enc = encoders["dinov2"]  # resize short side to 40, centre-crop 32
    res = image_attention(enc, vf.photo(60, 40), square=True)
    assert res.grid == (4, 4) and res.image.size == (32, 32) and res.square
    theirs = enc.processor(images=vf.photo(60, 40), return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        out = enc.model(pixel_values=theirs.to(enc.device), output_attentions=True)
    np.testing.assert_allclose(res.weights[-1], out.attentions[-1][0].cpu().numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["vit", "dinov2_reg", "siglip"])
def test_image_is_exactly_what_was_encoded_and_features_come_from_the_same_pass(encoders, name):
    """Feed res.image through transformers' own processor (no resizing) and the model: same attention, same features."""
    enc = encoders[name]
    res = image_attention(enc, vf.photo(70, 40, seed=3))
    pixel_values = enc.processor(images=res.image, do_resize=False, do_center_crop=False, return_tensors="pt")[
        "pixel_values"
    ]
    extra = {"interpolate_pos_encoding": True} if name != "dinov2_reg" else {}
    with torch.inference_mode():
        out = enc.model(
            pixel_values=pixel_values.to(enc.device), output_attentions=True, output_hidden_states=True, **extra
        )
    np.testing.assert_allclose(res.weights, torch.stack(out.attentions)[:, 0].cpu().numpy(), atol=2e-5)
    np.testing.assert_allclose(res.features, out.last_hidden_state[0].cpu().numpy(), atol=2e-4)
    last_block = out.hidden_states[-1][0, res.prefix :].cpu().numpy()
    np.testing.assert_allclose(patch_norms(res).ravel(), np.linalg.norm(last_block, axis=-1), rtol=1e-4)


def test_pca_rgb_matches_sklearn_components_up_to_sign(encoders):
    from sklearn.decomposition import PCA

    res = image_attention(encoders["dinov2"], vf.photo(64, 48, seed=1))
    rgb = pca_rgb(res)
    assert rgb.shape == (*res.grid, 3) and rgb.min() >= 0 and rgb.max() <= 1
    scores = PCA(n_components=3).fit_transform(res.features[res.prefix :].astype(np.float64))
    for k in range(3):
        channel = rgb[..., k].ravel()
        candidates = [(s - s.min()) / (s.max() - s.min()) for s in (scores[:, k], -scores[:, k])]
        assert min(np.abs(channel - c).max() for c in candidates) < 1e-4


def test_classification_checkpoint_loads_only_saved_weights(folders, encoders):
    """A ViTForImageClassification folder: the bare encoder, no pooler, and every parameter equal to the full
    classifier's own encoder (a randomly initialised one would differ: nothing is seeded here)."""
    from transformers import ViTForImageClassification

    enc = encoders["vit_cls"]
    assert type(enc.model).__name__ == "ViTModel" and enc.model.pooler is None
    full = ViTForImageClassification.from_pretrained(folders["vit_cls"]).vit.state_dict()
    ours = enc.model.state_dict()
    assert set(ours) == set(full) - {k for k in full if k.startswith("pooler.")}
    for key, value in ours.items():
        torch.testing.assert_close(value.cpu(), full[key], rtol=0, atol=0, msg=key)


def test_patch_cap_downscales_and_keeps_aspect(encoders):
    res = image_attention(encoders["vit"], vf.photo(90, 30), max_patches=8)  # 12×4 uncapped
    assert res.grid[0] * res.grid[1] <= 8 and res.grid[1] > res.grid[0]
    assert res.image.size == (res.grid[1] * 8, res.grid[0] * 8)
    assert any("limit of 8 patches" in note for note in res.notes)


def test_head_stats_and_eager_attention(encoders):
    res = image_attention(encoders["deit"], vf.photo())
    stats = es.head_stats(res)
    assert len(stats) == 4 and stats["cls"].notna().all()  # [CLS] and [DIST] are the special tokens
    assert encoders["deit"].model.config._attn_implementation == "eager"


# --- bad input ----------------------------------------------------------------------------------------------------


def test_image_modes_and_formats_all_become_rgb(encoders):
    enc = encoders["vit"]
    rgba = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 0, 0))
    deep = Image.fromarray((np.arange(1600).reshape(40, 40) * 40).astype(np.uint16))
    palette = vf.photo(40, 40).convert("P")
    frames = [Image.new("RGB", (40, 40), color) for color in ((0, 0, 255), (255, 255, 0))]
    gif = vf.encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    for image in (rgba, cmyk, deep, palette, gif, vf.encoded(vf.photo(40, 40), "JPEG")):
        res = image_attention(enc, image)
        assert res.image.mode == "RGB" and res.grid == (4, 4)
    res = image_attention(enc, rgba)
    assert np.asarray(res.image).min() == 255  # fully transparent -> white
    animated = Image.open(io.BytesIO(gif))
    animated.seek(1)  # a PIL animation left on its second (yellow) frame
    for source in (gif, animated):
        res = image_attention(enc, source)
        blue = np.asarray(res.image).mean(axis=(0, 1))
        assert blue[2] > 200 and blue[0] < 50 and any("first frame" in note for note in res.notes)


@pytest.mark.parametrize(
    "image, match",
    [
        (b"this is not an image", "not an image format"),
        (b"", "empty"),
        (Image.new("RGB", (7, 40)), "smaller than one 8×8 patch"),
        (12, "Expected an image"),
        ("/no/such/file.png", "No image file"),
    ],
)
def test_unusable_images_get_a_clear_message(encoders, image, match):
    with pytest.raises(es.UserFacingError, match=match):
        image_attention(encoders["vit"], image)


def test_huge_images_are_refused_before_decoding(encoders):
    settings.reload({"ENCODERSCOPE_MAX_IMAGE_PIXELS": "2000"})
    try:
        with pytest.raises(VisionError, match="limit is 0 MP"):
            image_attention(encoders["vit"], Image.new("RGB", (50, 50)))
        with pytest.raises(es.UserFacingError, match="MP"):
            image_attention(encoders["vit"], vf.encoded(Image.new("RGB", (50, 50))))
    finally:
        settings.reload()


def test_text_model_as_image_encoder_and_image_model_as_text_encoder(folders):
    with pytest.raises(ModelLoadError, match="text model"):
        load_image_encoder(str(folders["bert"]))
    with pytest.raises(ModelLoadError, match="not a text encoder"):
        es.load_encoder(str(folders["vit"]))
    with pytest.raises(ModelLoadError, match="Choose a model"):
        load_image_encoder(None)


def test_encoder_without_attention_weights_is_refused(folders):
    enc = load_image_encoder(str(folders["vit"]))
    enc.model.set_attn_implementation("sdpa")  # as a model that only has fused attention would run
    with pytest.raises(VisionError, match="no attention weights"):
        image_attention(enc, vf.photo())


def test_hub_id_offline_fails_fast_naming_the_local_folder(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelLoadError, match="local model folder"):
        load_image_encoder("example-owner/not-a-cached-vit")
    assert time.monotonic() - start < 10
