"""Images and texts in one vector space: CLIP and SigLIP similarity, computed by the model's own forward pass.

Images go through the processor's standard preprocessing and captions through the model's tokenizer the way the
checkpoint was trained (CLIP: padded to the longest; SigLIP: padded to its fixed length), so the scores are the
model's own. Shapes: I images, T texts, D the shared embedding size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .inputs import check_images, check_texts
from .loading import ClipModel


@dataclass(frozen=True)
class ClipSimilarity:
    """Image-text scores of one batch.

    cosine:       float32 `[I, T]`, cosine similarity of the L2-normalised embeddings
    logits:       float32 `[I, T]`, the model's logits_per_image (cosine · exp(logit_scale) [+ logit_bias])
    probs:        float32 `[I, T]`, CLIP: softmax over the texts of each image; SigLIP: sigmoid of each logit
    image_embeds: float32 `[I, D]`, text_embeds: float32 `[T, D]`, both L2-normalised
    texts:        the captions as scored;  truncated: per caption, whether it was cut to the tokenizer's limit
    logit_scale:  the multiplier exp(model.logit_scale);  logit_bias: SigLIP's added bias (None for CLIP)
    """

    cosine: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    image_embeds: np.ndarray
    text_embeds: np.ndarray
    texts: tuple[str, ...]
    truncated: tuple[bool, ...]
    family: str
    logit_scale: float
    logit_bias: float | None = None


def _text_limit(clip: ClipModel) -> int:
    limits = [int(clip.model.config.text_config.max_position_embeddings)]
    tok_max = getattr(clip.tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    return min(limits)


def tokenize_texts(clip: ClipModel, texts: list[str]) -> tuple[dict, tuple[bool, ...]]:
    """Tokenize as the checkpoint was trained: SigLIP pads to max_length (it pools the last position), CLIP to the
    longest caption (it pools at the end-of-text token). Returns (tensors, truncated flags)."""
    limit = _text_limit(clip)
    lengths = [len(ids) for ids in clip.tokenizer(texts, verbose=False)["input_ids"]]
    padding = "max_length" if clip.family == "siglip" else True
    enc = clip.tokenizer(texts, padding=padding, truncation=True, max_length=limit, return_tensors="pt")
    return dict(enc), tuple(n > limit for n in lengths)


def clip_similarity(clip: ClipModel, images, texts) -> ClipSimilarity:
    """Score every image against every text with `clip` (at most 16 images and 32 texts).

    `images`: PIL images (any mode), file bytes or paths; `texts`: captions or prompts (see `apply_template`).
    """
    pictures = check_images(images)
    captions = check_texts(texts)
    pixel_values = np.asarray(clip.processor(images=pictures, return_tensors="np")["pixel_values"], np.float32)
    text_inputs, truncated = tokenize_texts(clip, captions)
    device = clip.device
    inputs = {k: v.to(device) for k, v in text_inputs.items() if k in ("input_ids", "attention_mask")}
    with torch.inference_mode():
        out = clip.model(pixel_values=torch.from_numpy(pixel_values).to(device), **inputs)
    image_embeds = out.image_embeds.float().cpu().numpy()
    text_embeds = out.text_embeds.float().cpu().numpy()
    logits = out.logits_per_image.float().cpu()
    probs = torch.sigmoid(logits) if clip.family == "siglip" else logits.softmax(dim=1)
    bias = getattr(clip.model, "logit_bias", None)
    return ClipSimilarity(
        cosine=(image_embeds @ text_embeds.T).astype(np.float32),
        logits=logits.numpy(),
        probs=probs.numpy(),
        image_embeds=image_embeds,
        text_embeds=text_embeds,
        texts=tuple(captions),
        truncated=truncated,
        family=clip.family,
        logit_scale=float(clip.model.logit_scale.detach().exp()),
        logit_bias=None if bias is None else float(bias.detach()),
    )


def modality_gap(sim: ClipSimilarity) -> float:
    """Distance between the centroids of the image and the text embeddings (Liang et al. 2022, the modality gap)."""
    return float(np.linalg.norm(sim.image_embeds.mean(axis=0) - sim.text_embeds.mean(axis=0)))
