"""Pictures of an image encoder's patch tokens, from the hidden states that `image_attention` already kept
(no second forward pass), and patch maps brought to the picture's pixels.

- `pca_rgb`: the first three principal components of the last layer's patch tokens as RGB (the DINO picture);
- `patch_norms` / `token_norms`: L2 norms of the last block's tokens, where high-norm artefact tokens show
  (Darcet et al. 2024, "Vision Transformers Need Registers");
- `to_pixels`: a `[rows, cols]` map repeated into patch-sized pixel boxes, aligned with `res.image`;
- `heat_overlay`: a map drawn over the picture (for PNG export).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..images import colorize
from .patch_attention import ImageAttention

# A perceptually ordered dark-to-bright ramp (inferno-like), sampled at 5 points and interpolated.


def pca_rgb(res: ImageAttention) -> np.ndarray:
    """First three principal components of the patch tokens of `res.features`, each min-max scaled to [0, 1]:
    float32 `[rows, cols, 3]`. Each component's sign is fixed so its largest score is positive (deterministic
    colours); a component with no spread is 0.5 (grey)."""
    X = res.features[res.prefix :].astype(np.float64)  # [N, D]
    X = X - X.mean(axis=0)
    rgb = np.full((X.shape[0], 3), 0.5)
    if X.shape[0] > 1 and np.abs(X).max() > 0:
        U, S, _ = np.linalg.svd(X, full_matrices=False)
        k = min(3, int((S > S[0] * 1e-9).sum()))
        scores = U[:, :k] * S[:k]  # [N, k]
        scores *= np.sign(scores[np.abs(scores).argmax(axis=0), np.arange(k)])
        lo, hi = scores.min(axis=0), scores.max(axis=0)
        rgb[:, :k] = (scores - lo) / np.where(hi > lo, hi - lo, 1.0)
    return rgb.reshape(*res.grid, 3).astype(np.float32)


def token_norms(res: ImageAttention) -> np.ndarray:
    """L2 norm of every token of the last block's output (prefix tokens included), float32 `[T]`."""
    return np.linalg.norm(res.hidden.astype(np.float64), axis=-1).astype(np.float32)


def patch_norms(res: ImageAttention) -> np.ndarray:
    """L2 norm of each patch token of the last block's output, float32 `[rows, cols]`."""
    return token_norms(res)[res.prefix :].reshape(res.grid)


@dataclass(frozen=True)
class NormOutliers:
    """Summary of patch-token norms: `median`, `maximum`, `ratio` = maximum / median, and `count` of patches
    whose norm exceeds `factor` × the median (the high-norm artefact tokens of Darcet et al. 2024)."""

    median: float
    maximum: float
    ratio: float
    count: int
    factor: float


def norm_outliers(norms: np.ndarray, factor: float = 2.0) -> NormOutliers:
    """Outlier statistics of a `[rows, cols]` (or any shape) array of token norms; see :class:`NormOutliers`.
    A zero median gives ratio inf when the maximum is positive (never a division error)."""
    values = np.asarray(norms, np.float64).ravel()
    if values.size == 0:
        raise ValueError("No norms to summarise.")
    median, maximum = float(np.median(values)), float(values.max())
    ratio = maximum / median if median > 0 else (float("inf") if maximum > 0 else 1.0)
    return NormOutliers(median, maximum, ratio, int((values > factor * median).sum()), float(factor))


def to_pixels(values: np.ndarray, patch_size: int) -> np.ndarray:
    """`[rows, cols]` (or `[rows, cols, C]`) -> `[rows·p, cols·p]` (or `[..., C]`): each patch's value fills its
    p × p pixel box, so pixel (y, x) of `res.image` shows patch (y // p, x // p)."""
    values = np.asarray(values)
    return np.repeat(np.repeat(values, patch_size, axis=0), patch_size, axis=1)


def heat_overlay(res: ImageAttention, values: np.ndarray, opacity: float = 0.6, **scale) -> Image.Image:
    """A `[rows, cols]` map (or `[rows, cols, 3]` RGB in [0, 1]) drawn over `res.image` at `opacity`: RGB PIL
    image of the picture's size. `scale` passes vmin/vmax to :func:`colorize`."""
    values = np.asarray(values)
    if values.shape[:2] != tuple(res.grid):
        raise ValueError(f"Expected a {res.grid} map, got shape {values.shape}.")
    rgb = values if values.ndim == 3 else colorize(values, **scale)
    layer = to_pixels(rgb, res.patch_size)
    base = np.asarray(res.image, np.float32) / 255
    mixed = base * (1 - opacity) + layer * opacity
    return Image.fromarray(np.clip(np.round(mixed * 255), 0, 255).astype(np.uint8), "RGB")
