"""Issue 17's image items: each test names the defect it catches (checked by putting the defect back).

- the patch grid one short for 8% of sizes (float truncation);
- CLIP's `features` without its final norm;
- `max_image_patches` not reaching `image_attention`;
- the distance chart's uniform baseline, the click → patch conversion and the norm-outlier numbers, now library
  functions with hand-computed answers;
- one scan of the models folder for every picker (and the shared ViT-Ti listed from ../shared/models);
- the shared image input living on the VAE page.
"""

from __future__ import annotations

import ast
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from encoderscope import local_models, settings, vision
from encoderscope.figures import vision as vision_figures
from encoderscope.vision import preprocess
from tests import vision_fixtures as vf

ROOT = Path(__file__).resolve().parents[2]
VIT_TINY = ROOT.parent / "shared" / "models" / "vit-tiny-patch16-224"


@pytest.fixture(autouse=True)
def fresh_settings():
    settings.reload({})
    yield
    settings.reload()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision_fixes")
    return {
        "root": root,
        "vit": vf.tiny_vit(root / "vit"),
        "clip": vf.tiny_clip(root / "clip"),
        "siglip": vf.tiny_siglip(root / "siglip"),
        "bert": vf.tiny_bert_config(root / "bert"),
    }


# --- the patch grid ---------------------------------------------------------------------------------------------


def _rule(width: int, height: int, side: int, patch: int) -> tuple[int, int]:
    """The documented rule in exact rational arithmetic: the short side becomes `side`, the long side is scaled
    alike and cut to whole patches."""
    scale = Fraction(side, min(width, height))
    return int(height * scale) // patch, int(width * scale) // patch


@pytest.mark.parametrize("side, patch", [(224, 16), (224, 14), (224, 32), (384, 16), (518, 14)])
def test_grid_follows_the_rule_for_every_size(side, patch):
    # Bug: `int(height * side / min(w, h))` gives 223 for 299 px (float rounding) and the grid loses a patch:
    # 13×13 instead of 14×14 for ViT-B/16, 6×6 instead of 7×7 for CLIP-B/32.
    for short in range(150, 700):
        for long in (short, short + 37, 2 * short + 1):
            for w, h in ((short, long), (long, short)):
                expected = _rule(w, h, side, patch)
                assert preprocess.target_grid(w, h, side, patch, max_patches=2**62) == expected, (w, h)
                assert min(expected) == side // patch  # the short side is exactly the input side


@pytest.mark.parametrize("size", [(299, 299), (306, 306), (314, 314), (332, 332), (299, 450), (640, 314)])
def test_real_processor_sees_whole_patches_at_the_sizes_the_review_found(size):
    # Bug: the sizes named in the review; through the real ViT-Ti processor, the picture encoded is 224 px on
    # its short side, so the grid is 14 patches there.
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(str(VIT_TINY), backend="pil")
    prep = preprocess.prepare_aspect(vf.photo(*size), processor, 16)
    rows, cols = prep.grid
    assert min(rows, cols) == 14
    assert (rows, cols) == _rule(*size, 224, 16)
    assert prep.image.size == (cols * 16, rows * 16)


# --- features after the final norm ------------------------------------------------------------------------------


def test_clip_features_are_after_its_post_layernorm(folders):
    # Bug: CLIP's `last_hidden_state` has no final norm, so `features` equalled `hidden` while the docs promised
    # the normed state; the PCA picture then showed the un-normed tokens.
    enc = vision.load_image_encoder(str(folders["clip"]))
    res = vision.image_attention(enc, vf.photo(40, 32))
    norm = enc.model.post_layernorm
    with torch.no_grad():
        expected = torch.nn.functional.layer_norm(
            torch.from_numpy(res.hidden), norm.normalized_shape, norm.weight, norm.bias, norm.eps
        ).numpy()
    np.testing.assert_allclose(res.features, expected, atol=1e-5)
    assert not np.allclose(res.features, res.hidden, atol=1e-3)
    assert "post_layernorm" in res.features_state


def test_siglip_and_vit_features_are_their_last_hidden_state(folders):
    # Bug: a second norm applied on top of one the model already has (SigLIP, ViT normalise inside).
    for name in ("siglip", "vit"):
        enc = vision.load_image_encoder(str(folders[name]))
        res = vision.image_attention(enc, vf.photo(40, 32))
        pixels = torch.from_numpy(vision.patch_attention.prepare(enc, vf.photo(40, 32), False).pixel_values)
        with torch.no_grad():
            out = enc.model(pixel_values=pixels, interpolate_pos_encoding=True)
        np.testing.assert_allclose(res.features, out.last_hidden_state[0].numpy(), atol=1e-5)
        assert "after" in res.features_state


# --- max_image_patches --------------------------------------------------------------------------------------------


def test_max_image_patches_setting_reaches_image_attention(folders):
    # Bug: the setting defined but image_attention still using its own constant of 1,024.
    enc = vision.load_image_encoder(str(folders["vit"]))
    assert settings.load({}).max_image_patches == 1024
    assert settings.load({"ENCODERSCOPE_PUBLIC": "1"}).max_image_patches <= 576
    settings.reload({"ENCODERSCOPE_MAX_IMAGE_PATCHES": "6"})
    res = vision.image_attention(enc, vf.photo(96, 32))  # 12×4 = 48 patches uncapped
    assert res.num_patches <= 6 and res.grid[1] > res.grid[0]
    assert any("limit of 6 patches" in note for note in res.notes)
    settings.reload({})
    assert vision.image_attention(enc, vf.photo(96, 32)).grid == (4, 12)


# --- numbers that moved out of the UI -----------------------------------------------------------------------------


def test_uniform_attention_distance_by_hand():
    # Bug: the baseline from the wrong grid or in patches instead of pixels.
    # 2×2 grid of 10 px patches: from each patch, distances 0, 10, 10, 10·√2 -> mean (20 + 10√2) / 4.
    assert vision.uniform_attention_distance((2, 2), 10) == pytest.approx((20 + 10 * np.sqrt(2)) / 4)
    assert vision.uniform_attention_distance((14, 14), 16) == pytest.approx(116.5, abs=0.05)  # the README's figure
    # it is what attention_distance gives when every query spreads evenly over the patches
    grid, T = (2, 3), 7
    weights = np.full((1, 1, T, T), 1 / 6, np.float32)
    weights[..., 0] = 0
    res = vision.ImageAttention(
        tokens=["[CLS]", *map(str, range(6))],
        weights=weights,
        special=np.arange(T) < 1,
        prefix=1,
        grid=grid,
        patch_size=4,
        image=Image.new("RGB", (12, 8)),
    )
    assert vision.attention_distance(res)[0, 0] == pytest.approx(vision.uniform_attention_distance(grid, 4), rel=1e-6)


def test_patch_at_inverts_patch_centres_and_clamps_the_edges():
    # Bug: a click on the right or lower half of a patch going to the next patch (rounding instead of floor),
    # rows and columns swapped, a click on the outer edge off the grid.
    grid, p = (3, 5), 8
    x, y, r, c = vision_figures.patch_centres(grid, p)
    for xi, yi, ri, ci in zip(x, y, r, c, strict=True):
        assert vision_figures.patch_at(xi, yi, grid, p) == (ri, ci)
        assert vision_figures.patch_at(xi + p / 2 - 0.01, yi + p / 2 - 0.01, grid, p) == (ri, ci)
        assert vision_figures.patch_at(xi - p / 2, yi - p / 2, grid, p) == (ri, ci)  # the box's first pixel edge
    assert vision_figures.patch_at(8 * p - 0.5, 0, grid, p) == (0, 4)  # past the right edge: the last column
    assert vision_figures.patch_at(-3, 100, grid, p) == (2, 0)
    assert vision_figures.patch_at(2 * p + 1, 0, grid, p) == (0, 2)  # x picks the column, y the row


def test_norm_outliers_by_hand():
    # Bug: the count against the mean instead of the median, or "≥" for ">"; a zero median dividing by zero.
    stats = vision.norm_outliers(np.array([[1.0, 2.0, 2.0], [2.0, 4.0, 9.0]]))
    assert (stats.median, stats.maximum, stats.ratio, stats.count) == (2.0, 9.0, 4.5, 1)  # 4.0 is not > 2 × 2
    assert vision.norm_outliers(np.zeros(4)).ratio == 1.0
    assert vision.norm_outliers(np.array([0.0, 0.0, 0.0, 5.0])).ratio == float("inf")


# --- one scan of the models folder ------------------------------------------------------------------------------


def test_one_scan_lists_each_kind_and_nothing_in_public_mode(folders):
    # Bug: two scans that disagree (the /vision one listed text models, the text one image models), or a
    # public server listing its disk.
    root = str(folders["root"])
    settings.reload({"ENCODERSCOPE_MODELS_DIR": root})
    assert local_models.find("image") == [str(folders["clip"]), str(folders["siglip"]), str(folders["vit"])]
    assert local_models.find("clip") == [str(folders["clip"]), str(folders["siglip"])]
    # CLIP and SigLIP folders are text encoders too (their text tower loads on the attention pages)
    assert local_models.find("encoder") == [str(folders["bert"]), str(folders["clip"]), str(folders["siglip"])]
    settings.reload({"ENCODERSCOPE_PUBLIC": "1", "ENCODERSCOPE_MODELS_DIR": root})
    assert local_models.find("image") == []
    with pytest.raises(ValueError):
        local_models.find("audio")


def test_shared_vit_tiny_is_listed_from_the_shared_models_folder():
    # Bug: the real ViT-Ti next to TAEF2 not offered offline (the page would only list hub ids that fail).
    settings.reload({"ENCODERSCOPE_MODELS_DIR": str(VIT_TINY.parent)})
    assert str(VIT_TINY) in local_models.find("image")
    assert str(VIT_TINY) not in local_models.find("encoder")


def test_pickers_call_the_one_scan():
    # Bug: a second copy of the scan creeping back into the UI.
    ui_source = (ROOT / "components" / "ui.py").read_text()
    controls_source = (ROOT / "components" / "vision" / "controls.py").read_text()
    assert "local_models.find(kind)" in ui_source and "local_models.find(kind)" in controls_source
    for source in (ui_source, controls_source):
        assert 'glob("*/config.json")' not in source


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_image_pages_share_a_neutral_image_input():
    # Bug: /vision importing the VAE page's module for its image input (one page's UI depending on another's).
    files = [ROOT / "views" / "vision.py", *sorted((ROOT / "components" / "vision").glob("*.py"))]
    for path in files:
        assert not any(name.startswith("components.vae") for name in _imports(path)), path
    assert "components.image_input.image_input" in _imports(ROOT / "views" / "vision.py")
    assert "components.image_input.image_input" in _imports(ROOT / "views" / "vae.py")
