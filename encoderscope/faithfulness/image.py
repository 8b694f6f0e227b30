"""Deletion tests of image explanations: `image` (for `explain_image`) and `image_methods` (relevance against raw
[CLS] attention and attention rollout, on the same picture and the same random orders).

A patch is removed by setting its pixels to the processor's mean colour (0 after normalisation), as Petsiuk et
al. (2018) and Chefer et al. (2021) do. The picture is `ex.image`, exactly as the model read it when explaining,
so patch (r, c) of `ex.map` is the square the curve blanks. The value: a classifier's softmax probability of
`ex.target`; for CLIP/SigLIP the cosine of the image embedding with the caption's (held fixed).
Shapes: N = rows · cols patches, B states per step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import settings
from ..errors import UserFacingError
from ..vision.preprocess import normalise
from .curves import Curves, Evaluate, curves

if TYPE_CHECKING:
    from ..attribution.image import ImageRelevance

METHODS = ("relevance", "cls_attention", "rollout")
IMAGE_BATCH_TOKENS = 4096  # tokens (pictures × patches) in one forward pass of a step
METHOD_LABELS = {"relevance": "relevance (Chefer et al.)", "cls_attention": "raw [CLS] attention, last layer",
                 "rollout": "attention rollout"}


def _blank(pixels: np.ndarray, removed: np.ndarray, grid: tuple[int, int], p: int) -> np.ndarray:
    """`pixels` `[3, H, W]` with each removed patch (bool `[N]`, row-major) set to 0, the mean colour."""
    out = pixels.copy()
    cols = grid[1]
    for index in np.flatnonzero(removed):
        r, c = divmod(int(index), cols)
        out[:, r * p : (r + 1) * p, c * p : (c + 1) * p] = 0.0
    return out


def _scorer(model, ex: ImageRelevance):
    """(processor, value of a batch `[B, 3, H, W]` -> `[B]`, measure) for a classifier or CLIP/SigLIP."""
    from ..vision.classify import logits, require_head
    from ..vision.clip import tokenize_texts
    from ..vision.loading import ClipModel

    if isinstance(model, ClipModel):
        if not isinstance(ex.target, str):
            raise UserFacingError("This explanation is of a class, not a caption: test it with its classifier.")
        text, _ = tokenize_texts(model, [ex.target])
        inputs = {k: v.to(model.device) for k, v in text.items() if k in ("input_ids", "attention_mask")}

        def value(batch: np.ndarray) -> np.ndarray:  # the forward `clip_similarity` runs: same embeddings
            out = model.model(pixel_values=torch.from_numpy(batch).to(model.device), **inputs)
            images = torch.nn.functional.normalize(out.image_embeds.float(), dim=-1)
            caption = torch.nn.functional.normalize(out.text_embeds.float(), dim=-1)[0]
            return (images @ caption).double().cpu().numpy()

        return model.processor, value, "cosine"
    enc = require_head(model)
    if isinstance(ex.target, str):
        raise UserFacingError("This explanation is of a caption: test it with its CLIP/SigLIP model.")

    def value(batch: np.ndarray) -> np.ndarray:
        return logits(enc, batch).logits.float().softmax(-1)[:, int(ex.target)].double().cpu().numpy()

    return enc.processor, value, "probability"


def _check(ex: ImageRelevance, maps: dict[str, np.ndarray]) -> None:
    rows, cols = ex.grid
    limit = settings.get().max_image_patches
    if rows * cols > limit:
        raise UserFacingError(f"The picture has {rows * cols} patches; this server tests at most {limit}.")
    for name, m in maps.items():
        if np.asarray(m).size != rows * cols:
            raise UserFacingError(f"The {name} map has {np.asarray(m).size} values for {rows}×{cols} patches.")


def evaluator(model, ex: ImageRelevance) -> tuple[Evaluate, str]:
    """(evaluate, measure): `evaluate(removed)` maps bool masks `[N]` (row-major patches of `ex.image`, True:
    blanked) to the explained value of each picture, float64 `[len(removed)]`; run it under inference mode."""
    processor, value, measure = _scorer(model, ex)
    pixels = normalise(ex.image, processor)[0]  # [3, H, W]
    p = ex.patch_size

    # memory bound: attention holds B × heads × T² floats, so a step's states go in chunks of at most `chunk`
    # pictures (all of them at once for ViT-Ti at 224 × 224: 20 pictures of 197 tokens)
    chunk = max(4, IMAGE_BATCH_TOKENS // (ex.grid[0] * ex.grid[1] + 1))

    def evaluate(states: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([
            value(np.stack([_blank(pixels, removed, ex.grid, p) for removed in states[i : i + chunk]]))
            for i in range(0, len(states), chunk)
        ])

    return evaluate, measure


@torch.inference_mode()
def _run(model, ex: ImageRelevance, maps: dict[str, np.ndarray], steps: int, seeds: int) -> dict[str, Curves]:
    _check(ex, maps)
    evaluate, measure = evaluator(model, ex)
    scores = [np.asarray(m, np.float64).ravel() for m in maps.values()]
    found = curves(evaluate, scores, steps, seeds, measure=measure, unit="patch", removal="mean colour")
    return dict(zip(maps, found, strict=True))


def image(model, image, ex: ImageRelevance, steps: int = 14, seeds: int = 3) -> Curves:
    """The deletion test of `ex` (an `explain_image` result of `model`: a classifier, or CLIP/SigLIP for a
    caption). `image` is the picture that was explained; the curve blanks the patches of `ex.image`, the same
    picture as the model read it (aspect kept or square), so the patches line up with `ex.map` `[rows, cols]`.
    `deletion[0]` is `ex.probability` (classifier) or the image-caption cosine (CLIP/SigLIP)."""
    if image is None and getattr(ex, "image", None) is None:
        raise UserFacingError("Give the picture that was explained.")
    return _run(model, ex, {"relevance": ex.map}, steps, seeds)["relevance"]


def attention_maps(model, ex: ImageRelevance) -> dict[str, np.ndarray]:
    """The three patch rankings of one picture, each float `[rows, cols]`: "relevance" (`ex.map`),
    "cls_attention" (the last layer's attention from the first token, mean over heads) and "rollout" (its
    row of `es.rollout`, Abnar & Zuidema 2020). Classifiers and bare image encoders with a [CLS] token."""
    from ..attention_maps import rollout
    from ..vision.classify import require_head

    enc = require_head(model)
    if not enc.prefix_names:
        raise UserFacingError(f"{enc.name!r} has no [CLS] token: raw [CLS] attention and rollout are undefined.")
    pixels = torch.from_numpy(normalise(ex.image, enc.processor)).to(enc.device)
    kwargs = {"interpolate_pos_encoding": True} if enc.interpolate else {}
    with torch.inference_mode():
        out = enc.classifier(pixel_values=pixels, output_attentions=True, **kwargs)
    weights = np.stack([a[0].float().cpu().numpy() for a in out.attentions])  # [L, H, T, T]
    P = len(enc.prefix_names)
    return {
        "relevance": np.asarray(ex.map, np.float64),
        "cls_attention": weights[-1].mean(0)[0, P:].reshape(ex.grid).astype(np.float64),
        "rollout": rollout(weights)[0, P:].reshape(ex.grid).astype(np.float64),
    }


def image_methods(model, ex: ImageRelevance, steps: int = 14, seeds: int = 3) -> dict[str, Curves]:
    """Deletion tests of relevance, raw [CLS] attention and rollout (see `attention_maps`) on `ex.image`, against
    one shared set of random orders (so their `random` curves are identical). One batched pass per step holds
    2 × 3 + seeds pictures. Returns {method: Curves} in `METHODS` order."""
    return _run(model, ex, attention_maps(model, ex), steps, seeds)
