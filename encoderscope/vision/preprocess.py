"""From an RGB picture to the pixels a vision transformer reads, and back to the picture it saw.

Two modes:
- aspect-preserving (default): short side = the processor's input side (224 for most), long side scaled alike,
  both centre-cropped down to a multiple of the patch size, the whole downscaled when it would exceed MAX_PATCHES;
- square: the processor's own preprocessing (resize, centre crop), exactly as the checkpoint was trained.

Either way the picture returned is the one encoded, `size == (cols * patch, rows * patch)`.
Normalisation uses the processor's own rescale factor, mean and std.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .inputs import MAX_PATCHES, VisionError


@dataclass(frozen=True)
class Prepared:
    """An image ready for the model: `pixel_values` float32 `[1, 3, H, W]`, `image` the RGB picture it encodes
    (W × H pixels), `grid` (rows, cols) of patches, `notes` what was done to the input, for the user."""

    pixel_values: np.ndarray
    image: Image.Image
    grid: tuple[int, int]
    notes: tuple[str, ...]


def input_side(processor) -> int:
    """The side the checkpoint was trained at: the centre crop when the processor crops, else its resize size."""
    crop = getattr(processor, "crop_size", None)
    if getattr(processor, "do_center_crop", False) and crop and crop.get("height"):
        return int(crop["height"])
    size = processor.size
    if size.get("shortest_edge"):
        return int(size["shortest_edge"])
    return int(min(size["height"], size["width"]))


def target_grid(width: int, height: int, side: int, patch: int, max_patches: int = MAX_PATCHES) -> tuple[int, int]:
    """(rows, cols) of patches for a `width` × `height` picture whose short side is scaled to `side`.

    Each count is the scaled side rounded down to whole patches (at least 1): the short side gives exactly
    `side // patch` patches, the long side `floor(long · side / short) // patch`. Integer arithmetic: with floats,
    299 · (224 / 299) is 223.99999999999997 and the grid came out one patch short. When rows × cols exceeds
    `max_patches` both shrink by the same factor, so the aspect ratio holds as closely as whole patches allow.
    """
    short = min(width, height)
    rows = max(1, height * side // short // patch)
    cols = max(1, width * side // short // patch)
    if rows * cols > max_patches:
        shrink = math.sqrt(max_patches / (rows * cols))
        rows, cols = max(1, int(rows * shrink)), max(1, int(cols * shrink))
        cols = min(cols, max_patches // rows)
    return rows, cols


def _resample(processor) -> Image.Resampling:
    return Image.Resampling(int(getattr(processor, "resample", Image.Resampling.BICUBIC)))


def _mean_std(processor) -> tuple[np.ndarray, np.ndarray]:
    if not getattr(processor, "do_normalize", True):
        return np.zeros(3, np.float32), np.ones(3, np.float32)
    return np.asarray(processor.image_mean, np.float32), np.asarray(processor.image_std, np.float32)


def _rescale(processor) -> float:
    return float(processor.rescale_factor) if getattr(processor, "do_rescale", True) else 1.0


def normalise(image: Image.Image, processor) -> np.ndarray:
    """RGB picture -> float32 `[1, 3, H, W]`: rescaled (1/255) and normalised with the processor's mean/std."""
    mean, std = _mean_std(processor)
    arr = np.asarray(image, np.float32) * _rescale(processor)  # [H, W, 3]
    return ((arr - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)


def denormalise(pixel_values: np.ndarray, processor) -> Image.Image:
    """Inverse of :func:`normalise` for one image `[1, 3, H, W]` (or `[3, H, W]`): the RGB picture it encodes."""
    mean, std = _mean_std(processor)
    chw = np.asarray(pixel_values, np.float32).reshape(3, *pixel_values.shape[-2:])
    arr = (chw.transpose(1, 2, 0) * std + mean) / _rescale(processor)
    return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), "RGB")


def prepare_aspect(image: Image.Image, processor, patch: int, max_patches: int = MAX_PATCHES) -> Prepared:
    """Aspect-preserving preprocessing (see the module docstring). `image` is RGB."""
    w, h = image.size
    if w < patch or h < patch:
        raise VisionError(f"The image is {w}×{h} pixels, smaller than one {patch}×{patch} patch.")
    side = input_side(processor)
    rows, cols = target_grid(w, h, side, patch, max_patches)
    # scale to cover rows*patch × cols*patch with the aspect ratio kept, then centre-crop the rest
    scale = max(cols * patch / w, rows * patch / h)
    sw, sh = max(cols * patch, round(w * scale)), max(rows * patch, round(h * scale))
    notes = []
    resized = image.resize((sw, sh), _resample(processor)) if (sw, sh) != (w, h) else image
    if (sw, sh) != (w, h):
        notes.append(f"Resized from {w}×{h} to {sw}×{sh} (short side {min(sw, sh)}, aspect ratio kept).")
    tw, th = cols * patch, rows * patch
    if (tw, th) != (sw, sh):
        left, top = (sw - tw) // 2, (sh - th) // 2
        resized = resized.crop((left, top, left + tw, top + th))
        notes.append(f"Centre-cropped to {tw}×{th}: {rows}×{cols} patches of {patch} px.")
    if (rows, cols) != target_grid(w, h, side, patch, max_patches=2**62):
        notes.append(
            f"Downscaled to stay within this server's limit of {max_patches} patches (max_image_patches): "
            f"{rows}×{cols} instead of the full-resolution grid."
        )
    return Prepared(normalise(resized, processor), resized, (rows, cols), tuple(notes))


def prepare_square(image: Image.Image, processor, patch: int) -> Prepared:
    """The processor's own preprocessing; the picture is read back from the pixel values it produced."""
    w, h = image.size
    if w < patch or h < patch:
        raise VisionError(f"The image is {w}×{h} pixels, smaller than one {patch}×{patch} patch.")
    pixel_values = np.asarray(processor(images=image, return_tensors="np")["pixel_values"], np.float32)
    _, _, ph, pw = pixel_values.shape
    if ph % patch or pw % patch:
        raise VisionError(f"The processor makes {pw}×{ph} images, not a whole number of {patch}-pixel patches.")
    seen = denormalise(pixel_values, processor)
    note = f"The processor's own preprocessing: {w}×{h} -> {pw}×{ph}."
    return Prepared(pixel_values, seen, (ph // patch, pw // patch), (note,))
