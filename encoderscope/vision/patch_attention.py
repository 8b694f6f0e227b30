"""Attention over image patches: one forward pass of an image encoder, per-patch maps and attention distance.

Shapes: L layers, H heads, T = P + N tokens (P prefix tokens such as [CLS], [DIST], [REG0]..., then N = rows × cols
patches in row-major order), D hidden size. Weights are `[L, H, T, T]`, rows are queries and sum to 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .. import settings
from ..attention_maps import AttentionResult, format_attention
from .inputs import ImageInput, VisionError, as_rgb
from .loading import ImageEncoder
from .preprocess import prepare_aspect, prepare_square


@dataclass(frozen=True)
class ImageAttention(AttentionResult):
    """Attention of one image; an :class:`AttentionResult` (so `rollout` and `head_stats` take it) plus its geometry.

    tokens:     prefix names, then "r,c" for each patch (row-major); `special` marks the prefix
    prefix:     number of leading non-patch tokens P
    grid:       (rows, cols) of patches;  patch_size: pixels per patch side
    image:      the RGB picture exactly as encoded, size (cols × patch_size, rows × patch_size)
    features:   float32 `[T, D]`, the last block's output after the model's own final norm: `last_hidden_state`
                for ViT, DeiT, DINOv2 and SigLIP (their final LayerNorm is inside it); for CLIP, whose
                `last_hidden_state` has no norm, its `post_layernorm` applied to every token (CLIP itself applies
                it to [CLS] only). `features_state` says which, in words.
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
    features_state: str = ""

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def token_index(self, row: int, col: int) -> int:
        """Index in `tokens` of the patch at (row, col)."""
        rows, cols = self.grid
        if not (0 <= row < rows and 0 <= col < cols):
            raise VisionError(f"Patch ({row}, {col}) is outside the {rows}×{cols} grid.")
        return self.prefix + row * cols + col


_FINAL_NORM = {
    "clip": "the last block's output after CLIP's post_layernorm (applied here to every token)",
    "siglip": "the last block's output after SigLIP's post_layernorm",
    "vit": "the last block's output after the model's final LayerNorm",
    "deit": "the last block's output after the model's final LayerNorm",
    "dinov2": "the last block's output after the model's final LayerNorm",
    "dinov2_with_registers": "the last block's output after the model's final LayerNorm",
}


def final_features(enc: ImageEncoder, out) -> tuple[torch.Tensor, str]:
    """(`[T, D]` tokens after the model's own final norm, which state that is in words) from a forward output.

    CLIP keeps its final LayerNorm (`post_layernorm`) outside `last_hidden_state`, for the pooled [CLS] only;
    the other families apply theirs inside `last_hidden_state`."""
    state = out.last_hidden_state[0]
    if enc.family == "clip":  # transformers 5 flattens CLIPVisionModel; older versions nest it in vision_model
        norm = getattr(enc.model, "post_layernorm", None) or enc.model.vision_model.post_layernorm
        return norm(state), _FINAL_NORM["clip"]
    return state, _FINAL_NORM.get(enc.family, "the model's last_hidden_state")


def patch_tokens(prefix_names, grid: tuple[int, int]) -> list[str]:
    rows, cols = grid
    return [*prefix_names, *(f"{r},{c}" for r in range(rows) for c in range(cols))]


def prepare(enc, image: ImageInput, square: bool, max_patches: int | None = None, patch: int | None = None):
    """The picture as `enc` (an ImageEncoder, or anything with `.processor`) reads it: a `preprocess.Prepared`.

    max_patches None: the server's `max_image_patches` setting (ENCODERSCOPE_MAX_IMAGE_PATCHES)."""
    notes: list[str] = []
    rgb = as_rgb(image, notes)
    patch = enc.patch_size if patch is None else patch
    if square:
        prep = prepare_square(rgb, enc.processor, patch)
    else:
        limit = settings.get().max_image_patches if max_patches is None else max_patches
        prep = prepare_aspect(rgb, enc.processor, patch, limit)
    return dataclasses.replace(prep, notes=tuple(notes) + prep.notes)


def image_attention(
    enc: ImageEncoder, image: ImageInput, square: bool = False, max_patches: int | None = None
) -> ImageAttention:
    """Run `enc` on `image` once and return every layer's and head's attention, plus the last hidden states.

    square=False keeps the aspect ratio (see `preprocess.prepare_aspect`), downscaled to at most `max_patches`
    patches (None: the `max_image_patches` setting); square=True uses the processor's own square
    preprocessing. Accepts a PIL image (any mode), file bytes or a path.
    """
    prep = prepare(enc, image, square, max_patches)
    pixels = torch.from_numpy(prep.pixel_values).to(enc.device)
    kwargs = {"interpolate_pos_encoding": True} if enc.interpolate else {}
    with torch.inference_mode():
        out = enc.model(pixel_values=pixels, output_attentions=True, output_hidden_states=True, **kwargs)
        final, state = final_features(enc, out)
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
    features = final.float().cpu().numpy()
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
        notes=prep.notes,
        square=square,
        features_state=state,
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


def uniform_attention_distance(grid: tuple[int, int], patch_size: int) -> float:
    """What :func:`attention_distance` gives for uniform attention over the patches, in pixels: every query
    spreads 1/N over the N patches, so the mean distance is the mean of all N × N centre distances (the
    baseline line of the distance chart). 116.5 px for a 14 × 14 grid of 16-pixel patches."""
    return float(patch_distances(grid, patch_size).mean())


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
