"""Attention over image patches: one forward pass of an image encoder, per-patch maps and attention distance.

Shapes: L layers, H heads, T = P + N tokens (P prefix tokens such as [CLS], [DIST], [REG0]..., then N = rows × cols
patches in row-major order), D hidden size. Weights are `[L, H, T, T]`, rows are queries and sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from ..attention_maps import AttentionResult, format_attention
from .inputs import MAX_PATCHES, ImageInput, VisionError, as_rgb
from .loading import ImageEncoder
from .preprocess import prepare_aspect, prepare_square


@dataclass(frozen=True)
class ImageAttention(AttentionResult):
    """Attention of one image; an :class:`AttentionResult` (so `rollout` and `head_stats` take it) plus its geometry.

    tokens:     prefix names, then "r,c" for each patch (row-major); `special` marks the prefix
    prefix:     number of leading non-patch tokens P
    grid:       (rows, cols) of patches;  patch_size: pixels per patch side
    image:      the RGB picture exactly as encoded, size (cols × patch_size, rows × patch_size)
    features:   float32 `[T, D]`, the model's last hidden state (after its final norm, where it has one)
    hidden:     float32 `[T, D]`, the last block's output before any final norm (token norms, Darcet et al. 2024)
    notes:      what was done to the input picture, for the user
    """

    prefix: int = 0
    grid: tuple[int, int] = (0, 0)
    patch_size: int = 0
    image: Image.Image | None = None
    features: np.ndarray | None = None
    hidden: np.ndarray | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    square: bool = False

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def token_index(self, row: int, col: int) -> int:
        """Index in `tokens` of the patch at (row, col)."""
        rows, cols = self.grid
        if not (0 <= row < rows and 0 <= col < cols):
            raise VisionError(f"Patch ({row}, {col}) is outside the {rows}×{cols} grid.")
        return self.prefix + row * cols + col


def patch_tokens(prefix_names, grid: tuple[int, int]) -> list[str]:
    rows, cols = grid
    return [*prefix_names, *(f"{r},{c}" for r in range(rows) for c in range(cols))]


def image_attention(
    enc: ImageEncoder, image: ImageInput, square: bool = False, max_patches: int = MAX_PATCHES
) -> ImageAttention:
    """Run `enc` on `image` once and return every layer's and head's attention, plus the last hidden states.

    square=False keeps the aspect ratio (see `preprocess.prepare_aspect`); square=True uses the processor's own
    square preprocessing. Accepts a PIL image (any mode), file bytes or a path.
    """
    notes: list[str] = []
    rgb = as_rgb(image, notes)
    if square:
        prep = prepare_square(rgb, enc.processor, enc.patch_size)
    else:
        prep = prepare_aspect(rgb, enc.processor, enc.patch_size, max_patches)
    pixels = torch.from_numpy(prep.pixel_values).to(enc.device)
    kwargs = {"interpolate_pos_encoding": True} if enc.interpolate else {}
    with torch.inference_mode():
        out = enc.model(pixel_values=pixels, output_attentions=True, output_hidden_states=True, **kwargs)
    prefix = len(enc.prefix_names)
    n_tokens = prefix + prep.grid[0] * prep.grid[1]
    if not out.attentions:
        raise VisionError(
            f"{enc.name!r} returned no attention weights: it runs fused (SDPA/flash) attention only, which never "
            "builds them. Load it with attn_implementation='eager'."
        )
    try:
        weights = format_attention(out.attentions, n_tokens)
    except ValueError as err:  # more tokens than [prefix] + patches: an architecture we do not know
        raise VisionError(f"{enc.name!r} produced an unexpected token layout: {err}") from err
    features = out.last_hidden_state[0].float().cpu().numpy()
    hidden = out.hidden_states[-1][0].float().cpu().numpy()
    return ImageAttention(
        tokens=patch_tokens(enc.prefix_names, prep.grid),
        weights=weights,
        special=np.arange(n_tokens) < prefix,
        n_input_tokens=n_tokens,
        model_name=enc.name,
        prefix=prefix,
        grid=prep.grid,
        patch_size=enc.patch_size,
        image=prep.image,
        features=features,
        hidden=hidden,
        notes=tuple(notes) + prep.notes,
        square=square,
    )


def _check_index(value: int, size: int, what: str) -> int:
    if not isinstance(value, (int, np.integer)) or not -size <= value < size:
        raise VisionError(f"{what} {value!r} does not exist: the model has {size} (0 to {size - 1}).")
    return int(value)


def patch_map(
    res: ImageAttention, layer: int, head: int | str, query: int | tuple[int, int] | None = None
) -> np.ndarray:
    """Attention from one query token to every patch, float32 `[rows, cols]`.

    head: an index or "mean" (the mean over heads). query: a token index, a patch (row, col), or None for the
    [CLS] row when the model has one, else the mean over all query rows (SigLIP). Prefix keys are left out, so
    the map sums to less than 1 when the query also attends to [CLS] or registers.
    """
    layer = _check_index(layer, res.num_layers, "Layer")
    if head == "mean":
        per_layer = res.weights[layer].mean(axis=0)  # [T, T]
    else:
        per_layer = res.weights[layer, _check_index(head, res.num_heads, "Head")]
    if query is None:
        row = per_layer[0] if res.prefix and res.tokens[0] == "[CLS]" else per_layer.mean(axis=0)
    elif isinstance(query, tuple):
        row = per_layer[res.token_index(*query)]
    else:
        row = per_layer[_check_index(query, len(res.tokens), "Token")]
    return np.asarray(row[res.prefix :], np.float32).reshape(res.grid)


def patch_distances(grid: tuple[int, int], patch_size: int) -> np.ndarray:
    """Euclidean distance in pixels between patch centres, `[N, N]`, patches in row-major order."""
    rows, cols = grid
    r, c = np.divmod(np.arange(rows * cols), cols)
    return patch_size * np.hypot(r[:, None] - r[None, :], c[:, None] - c[None, :])


def attention_distance(res: ImageAttention) -> np.ndarray:
    """Mean attention distance in pixels, `[L, H]` (Dosovitskiy et al. 2021, Fig. 7).

    For each patch query: keys restricted to patches, the row renormalised to 1, then Σ_k a_qk · d(q, k);
    averaged over patch queries. Queries that attend to no patch at all are skipped.
    """
    dist = patch_distances(res.grid, res.patch_size).astype(np.float32)  # [N, N]
    P = res.prefix
    out = np.zeros((res.num_layers, res.num_heads))
    for layer in range(res.num_layers):  # one layer at a time: a renormalised copy of all of it can be 600 MB
        w = res.weights[layer, :, P:, P:]  # [H, N, N] view
        mass = w.sum(axis=-1, dtype=np.float64)  # [H, N]
        weighted = np.einsum("hqk,qk->hq", w, dist).astype(np.float64)  # [H, N]
        valid = mass > 0
        per_query = np.divide(weighted, mass, out=np.zeros_like(weighted), where=valid)
        count = valid.sum(axis=-1)
        out[layer] = np.divide(per_query.sum(axis=-1), count, out=np.full(count.shape, np.nan), where=count > 0)
    return out
