"""Which patches made the model say this: gradient-weighted attention relevance for images (and captions).

Chefer, Gur & Wolf (2021), "Generic Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder
Transformers". One forward pass with the attention probabilities kept, one backward pass of the explained score
to them, then per block (first to last)::

    Ā = mean over heads of max(∇A ⊙ A, 0)          [T, T]
    R ← R + Ā · R                                   R starts as the identity [T, T]

The map is the row of R, over the patches, of the token the classifier reads: [CLS]; the mean of the [CLS] row
and the mean patch row for DINOv2 (its head reads both, concatenated); the mean of the [CLS] and [DIST] rows
for distilled DeiT (two heads, averaged). SigLIP's vision tower has no [CLS] (it pools with an attention
head of its own), so its map is the mean row over every token, and `row` says so. The score explained:

- an image classifier (`ImageEncoder` with a head): the logit of `target` (a class index or label; None: the
  top class);
- CLIP / SigLIP (`ClipModel`): the image-text logit for the caption `target`; the text tower gets the same rule,
  read at the token the text tower pools (CLIP: end of text; SigLIP: the last position), over the caption's tokens.

Shapes: T tokens = prefix ([CLS], [DIST], registers) + rows × cols patches; maps are float32 `[rows, cols]`, ≥ 0.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .. import settings
from ..vision.classify import logits as classifier_logits
from ..vision.classify import require_head
from ..vision.clip import tokenize_texts
from ..vision.inputs import MAX_TEXT_CHARS, ImageInput, VisionError
from ..vision.loading import ClipModel, ImageEncoder
from ..vision.patch_attention import prepare


@dataclass(frozen=True)
class ImageRelevance:
    """Why the model gave `score` for `target` on `image`.

    map:         float32 `[rows, cols]` ≥ 0, the relevance of each patch (row `row` of R, patches only)
    grid:        (rows, cols);  patch_size: pixels per patch side;  image: the RGB picture exactly as encoded
    target:      the class index explained (classifier) or the caption as read (CLIP/SigLIP)
    label:       the class name, or the caption
    score:       the logit explained (class logit; CLIP: cosine · scale; SigLIP: + its bias)
    probability: the class's softmax probability (classifier), CLIP's/SigLIP's own score for this one caption
                 (SigLIP: sigmoid of the logit; CLIP: None, a softmax over one caption means nothing)
    row:         "[CLS]", "[CLS] + mean patch" (DINOv2 classifiers), "[CLS] + [DIST]" (distilled DeiT: the two
                 rows averaged) or "mean" (no [CLS]: the mean row over every token)
    text_tokens: the caption's tokens (special tokens left out), text_map: float32 `[len(text_tokens)]` ≥ 0
    notes:       what was done to the input and the target, for the user
    """

    map: np.ndarray
    grid: tuple[int, int]
    patch_size: int
    image: Image.Image
    target: int | str
    label: str
    score: float
    probability: float | None = None
    row: str = "[CLS]"
    text_tokens: tuple[str, ...] = ()
    text_map: np.ndarray | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


# what the map shows, when the classifier reads more than the [CLS] token
HEAD_ROWS = {
    "mean": "This model has no [CLS] token: the map is the mean relevance row over every token.",
    "[CLS] + mean patch": "This head classifies [CLS] joined with the mean patch token: the map averages the [CLS] "
    "relevance row and the mean patch row.",
    "[CLS] + [DIST]": "This distilled model averages a [CLS] head and a [DIST] head: the map averages their two "
    "relevance rows.",
}


def relevance(attentions: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """The Chefer et al. (2021) rule: R = I, then per layer R ← R + mean_h (∇A ⊙ A)⁺ · R. `attentions[l]` and
    `grads[l]` are `[H, T, T]` (or `[1, H, T, T]`), first layer first; returns R `[T, T]` (float32)."""
    T = attentions[0].shape[-1]
    R = torch.eye(T, dtype=torch.float32, device=attentions[0].device)
    for A, G in zip(attentions, grads, strict=True):
        A, G = A.reshape(-1, T, T).float(), G.reshape(-1, T, T).float()
        cam = (G * A).clamp(min=0).mean(dim=0)  # [T, T]
        R = R + cam @ R
    return R


def _row(R: torch.Tensor, prefix: int, has_cls: bool, head: str = "") -> tuple[np.ndarray, str]:
    """(patch relevance `[N]`, which row) from R `[T, T]`: the row(s) of the tokens the classifier `head` (its
    class name) reads. DINOv2's head reads [CLS] concatenated with the mean patch token, distilled DeiT averages
    a [CLS] head and a [DIST] head: their two rows are averaged. Else the [CLS] row, or the mean row without one."""
    if head.startswith("Dinov2") and has_cls:
        row, which = (R[0] + R[prefix:].mean(dim=0)) / 2, "[CLS] + mean patch"
    elif head == "DeiTForImageClassificationWithTeacher":
        row, which = (R[0] + R[1]) / 2, "[CLS] + [DIST]"
    elif has_cls:
        row, which = R[0], "[CLS]"
    else:
        row, which = R.mean(dim=0), "mean"
    return row[prefix:].detach().cpu().numpy().astype(np.float32), which


def _class_target(enc: ImageEncoder, target, logits: torch.Tensor, notes: list[str]) -> int:
    """The class index to explain: None -> the top class; a label -> its index; out of range -> the top class,
    with a note."""
    top = int(logits.argmax())
    n = logits.numel()
    if target is None:
        return top
    if isinstance(target, str):
        wanted = target.strip().lower()
        for i, label in enumerate(enc.labels):
            if wanted == label.lower() or wanted in (part.strip().lower() for part in label.split(",")):
                return i
        raise VisionError(f"{enc.name!r} has no class named {target[:100]!r}; give a class index 0–{n - 1}.")
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise VisionError(f"The target must be a class index or label, got {type(target).__name__}.")
    if not 0 <= int(target) < n:
        notes.append(f"Class {int(target)} is out of range (0–{n - 1}): explained the top class, {top}, instead.")
        return top
    return int(target)


GRADIENT_BYTES = 8  # per attention weight kept for the backward pass: the float32 map and its gradient


def gradient_patches(config, prefix: int, max_patches: int | None) -> tuple[int, str | None]:
    """The most patches an explanation may use on a vision tower with `config` (layers, heads) and `prefix`
    tokens before the patches: `max_patches` (None: the `max_image_patches` setting), lowered so that every
    layer's attention maps and their gradients (layers x heads x T^2 x GRADIENT_BYTES) fit in the
    `image_gradient_bytes` setting; and a note when that bound is the lower one."""
    conf = settings.get()
    limit = conf.max_image_patches if max_patches is None else int(max_patches)
    per_token2 = int(config.num_hidden_layers) * int(config.num_attention_heads) * GRADIENT_BYTES
    fits = int(math.isqrt(conf.image_gradient_bytes // per_token2)) - prefix
    if fits < 1:
        raise VisionError(
            f"This model's attention gradients do not fit in this server's {_mb(conf.image_gradient_bytes)} for "
            "explanations even with one patch (ENCODERSCOPE_IMAGE_GRADIENT_BYTES)."
        )
    if fits >= limit:
        return limit, None
    return fits, (
        f"At most {fits} patches here: the attention maps and their gradients must fit in this server's "
        f"{_mb(conf.image_gradient_bytes)} for explanations (ENCODERSCOPE_IMAGE_GRADIENT_BYTES)."
    )


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n:,} bytes"


def _prepare_bounded(model, config, prefix: int, image: ImageInput, square: bool, max_patches, patch=None):
    """`prepare` within `gradient_patches`; the processor's own square input cannot be downscaled, so one over
    the bound is refused."""
    limit, note = gradient_patches(config, prefix, max_patches)
    prep = prepare(model, image, square, limit, patch=patch)
    patches = prep.grid[0] * prep.grid[1]
    if square and patches > limit:
        raise VisionError(
            f"The square input has {patches} patches; explanations on this server take at most {limit} "
            f"({_mb(settings.get().image_gradient_bytes)} of attention gradients). Use the aspect-preserving input."
        )
    return dataclasses.replace(prep, notes=prep.notes + ((note,) if note and not square else ()))


def _explain_class(enc: ImageEncoder, image: ImageInput, target, square: bool, max_patches) -> ImageRelevance:
    enc = require_head(enc)
    prep = _prepare_bounded(enc, enc.model.config, len(enc.prefix_names), image, square, max_patches)
    notes = list(prep.notes)
    with torch.enable_grad():
        out = classifier_logits(enc, prep.pixel_values, output_attentions=True)
        if not out.attentions:
            raise VisionError(f"{enc.name!r} returned no attention weights (fused attention only).")
        logits = out.logits[0]
        index = _class_target(enc, target, logits.detach(), notes)
        grads = torch.autograd.grad(logits[index], out.attentions)
    R = relevance([a[0] for a in out.attentions], [g[0] for g in grads])
    has_cls = bool(enc.prefix_names) and enc.prefix_names[0] == "[CLS]"
    values, row = _row(R, len(enc.prefix_names), has_cls, type(enc.classifier).__name__)
    if row in HEAD_ROWS:
        notes.append(HEAD_ROWS[row])
    return ImageRelevance(
        map=np.maximum(values, 0).reshape(prep.grid),
        grid=prep.grid,
        patch_size=enc.patch_size,
        image=prep.image,
        target=index,
        label=enc.labels[index] if index < len(enc.labels) else f"class {index}",
        score=float(logits[index].detach()),
        probability=float(logits.detach().float().softmax(-1)[index]),
        row=row,
        notes=tuple(notes),
    )


def _pooled_index(clip: ClipModel, ids: torch.Tensor) -> int:
    """The position the text tower pools: SigLIP the last one; CLIP its end-of-text token (the highest id for
    old configs whose eos_token_id is 2, as transformers does)."""
    if clip.family == "siglip":
        return int(ids.numel() - 1)
    eos = getattr(clip.model.config.text_config, "eos_token_id", None)
    if eos == 2 or eos is None:
        return int(ids.argmax())
    hits = (ids == eos).nonzero()
    return int(hits[0]) if len(hits) else int(ids.numel() - 1)


def _text_side(clip: ClipModel, ids: torch.Tensor, R: torch.Tensor) -> tuple[tuple[str, ...], np.ndarray]:
    """(caption tokens without special tokens, their relevance `[n]`) read at the pooled position of R."""
    pooled = _pooled_index(clip, ids)
    row = R[pooled].detach().cpu().numpy().astype(np.float32)
    special = set(getattr(clip.tokenizer, "all_special_ids", []) or [])
    keep = [i for i in range(pooled + 1) if int(ids[i]) not in special] if clip.family == "clip" else [
        i for i in range(ids.numel()) if int(ids[i]) not in special
    ]
    tokens = clip.tokenizer.convert_ids_to_tokens([int(ids[i]) for i in keep])
    return tuple(str(t) for t in tokens), np.maximum(row[keep], 0)


def _explain_caption(clip: ClipModel, image: ImageInput, caption, square: bool, max_patches) -> ImageRelevance:
    if not isinstance(caption, str) or not caption.strip():
        raise VisionError("Give the caption to explain as target (CLIP/SigLIP explain an image-text match).")
    notes: list[str] = []
    caption = caption.strip()
    if len(caption) > MAX_TEXT_CHARS:
        notes.append(f"The caption has {len(caption)} characters; only the first {MAX_TEXT_CHARS} were read.")
        caption = caption[:MAX_TEXT_CHARS]
    vision_config = clip.model.config.vision_config
    prefix = 0 if clip.family == "siglip" else 1
    prep = _prepare_bounded(clip, vision_config, prefix, image, square, max_patches, patch=int(vision_config.patch_size))
    notes = list(prep.notes) + notes
    text, truncated = tokenize_texts(clip, [caption])
    if truncated[0]:
        notes.append(f"The caption is longer than the model reads: cut to {text['input_ids'].shape[1]} tokens.")
    device = clip.device
    inputs = {k: v.to(device) for k, v in text.items() if k in ("input_ids", "attention_mask")}
    pixels = torch.from_numpy(prep.pixel_values).to(device)
    with torch.enable_grad():
        out = clip.model(
            pixel_values=pixels, **inputs, output_attentions=True, interpolate_pos_encoding=not square
        )
        image_att = out.vision_model_output.attentions
        text_att = out.text_model_output.attentions
        if not image_att or not text_att:
            raise VisionError(f"{clip.name!r} returned no attention weights (fused attention only).")
        score = out.logits_per_image[0, 0]
        grads = torch.autograd.grad(score, (*image_att, *text_att))
    L = len(image_att)
    R_image = relevance([a[0] for a in image_att], [g[0] for g in grads[:L]])
    R_text = relevance([a[0] for a in text_att], [g[0] for g in grads[L:]])
    siglip = clip.family == "siglip"
    values, row = _row(R_image, 0 if siglip else 1, not siglip)
    if siglip:
        notes.append("SigLIP's image tower has no [CLS] token: the map is the mean relevance row over every patch.")
    rows, cols = prep.grid
    tokens, text_map = _text_side(clip, inputs["input_ids"][0].cpu(), R_text)
    logit = float(score.detach())
    return ImageRelevance(
        map=np.maximum(values, 0).reshape(rows, cols),
        grid=prep.grid,
        patch_size=int(vision_config.patch_size),
        image=prep.image,
        target=caption,
        label=caption,
        score=logit,
        probability=float(torch.sigmoid(torch.tensor(logit))) if siglip else None,
        row=row,
        text_tokens=tokens,
        text_map=text_map,
        notes=tuple(notes),
    )


def explain_image(
    model: ImageEncoder | ClipModel,
    image: ImageInput,
    target: int | str | None = None,
    square: bool = False,
    max_patches: int | None = None,
) -> ImageRelevance:
    """Which patches made `model` give its score for `target` on `image` (see the module docstring).

    model: an image classifier from `load_image_encoder` (target: class index, label or None for the top class)
    or a CLIP/SigLIP model from `load_clip` (target: a caption). square: the processor's own square crop instead
    of the aspect-preserving input. max_patches: None for the `max_image_patches` setting.
    """
    # A caller's torch.inference_mode() (a notebook, a cached page function) would make every tensor made here
    # an inference tensor, which autograd cannot differentiate; enable_grad alone does not leave that mode.
    with torch.inference_mode(False), torch.enable_grad():
        if isinstance(model, ClipModel):
            return _explain_caption(model, image, target, square, max_patches)
        return _explain_class(model, image, target, square, max_patches)


def deletion_curve(enc: ImageEncoder, rel: ImageRelevance, order: np.ndarray, steps: int = 16) -> np.ndarray:
    """The deletion test (Petsiuk et al. 2018, as Chefer et al. 2021 use it): the classifier's probability of
    `rel.target` as the patches are blanked in `order` (patch indices, row-major, first blanked first).

    Point s blanks the first round(s · N / steps) patches of `rel.image` (set to the processor's mean colour:
    0 after normalisation), s = 0..steps. Returns float32 `[steps + 1]`; a good map makes it fall fast (a small
    area under the curve, `curve.mean()`).

    The faithfulness engine's deletion curve for an order given outright (its blanking and scoring, one batched
    run): `es.faithfulness.image` takes the map's scores instead, caps the steps and adds the insertion curve
    and random orders."""
    from ..faithfulness.curves import deletion
    from ..faithfulness.image import evaluator

    enc = require_head(enc)
    rows, cols = rel.grid
    order = np.asarray(order, np.int64).ravel()
    if sorted(order.tolist()) != list(range(rows * cols)):
        raise ValueError(f"order must be a permutation of the {rows * cols} patch indices.")
    evaluate, _ = evaluator(enc, rel)
    with torch.inference_mode():
        curve = deletion(evaluate, order, [round(s * order.size / steps) for s in range(steps + 1)])
    return curve.astype(np.float32)
