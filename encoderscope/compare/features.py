"""Per-layer sentence (or image) vectors: one batched forward pass per model and input set.

`layer_features(model, texts)` -> float32 `[L + 1, N, D]`: row n of layer l is text n's vector at layer l
(0 = the embedding output), pooled the way the model pools its sentence vector:
- mean-pooled models (most sentence-transformers, and encoders without a pooling config): the attention-masked
  mean over tokens;
- [CLS]-pooled sentence-transformers: the first token;
- causal decoders and causal text towers (CLIP text): the masked mean (their first token sees only itself);
- CLIP/SigLIP text towers' pooling heads apply to the last layer only, so every layer takes the masked mean.
Image encoders (`es.load_image_encoder`) take a list of PIL images, each preprocessed as the model expects
(square), and pool as their head reads: [CLS] (ViT, DeiT, DINO/DINOv2, CLIP) or the mean patch (SigLIP, which
has no [CLS]).

Texts are tokenized once, sorted by length and batched under a token budget (padded tokens per batch), so
padding stays small; the result is in input order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..embeddings import pooling_of
from .checks import CompareError, check_finite, check_texts

if TYPE_CHECKING:
    from ..models import LoadedModel

TOKEN_BUDGET = 8192  # padded tokens per forward batch: [L+1, B, T, D] hidden states stay near 300 MB for 768-d
IMAGE_BATCH = 8

Progress = Callable[[int, int], None]  # (done, total)


def pooling_name(model: LoadedModel) -> str:
    """How `layer_features` pools each layer of `model`: "mean", "cls" (text), "cls_token" or "mean_patch" (image)."""
    if getattr(model, "kind", "") == "image":
        return "mean_patch" if not getattr(model, "prefix_names", ()) else "cls_token"
    if getattr(model, "kind", "") not in ("encoder", "decoder"):
        raise CompareError(
            f"{getattr(model, 'name', 'This model')} is not a text encoder, a causal decoder or an image encoder, "
            "so it has no layers of sentence vectors to compare."
        )
    if model.causal:
        return "mean"
    mode = pooling_of(model).mode
    return "cls" if mode == "cls" else "mean"


def _hidden(model: LoadedModel, out) -> tuple:
    states = getattr(out, "hidden_states", None)
    if not states:
        raise CompareError(
            f"{model.name} returns no hidden states (output_hidden_states is not supported), so its layers cannot "
            "be compared. Pick a transformer encoder or decoder."
        )
    return states


def _batches(lengths: list[int], budget: int) -> list[np.ndarray]:
    """Index batches, longest first, each with (batch size × its longest length) <= budget (at least one)."""
    order = np.argsort([-n for n in lengths], kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = max(lengths[order[start]], 1)
        size = max(1, budget // longest)
        batches.append(order[start : start + size])
        start += size
    return batches


@torch.inference_mode()
def _text_features(model: LoadedModel, texts: list[str], budget: int, progress: Progress | None) -> np.ndarray:
    pool = pooling_name(model)
    limit = pooling_of(model).max_length if not model.causal else model.max_length
    ids = model.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]
    lengths = [len(x) for x in ids]
    pad = model.tokenizer.pad_token_id
    pad = 0 if pad is None else int(pad)  # decoders without a pad token: padded positions are masked anyway
    body = model.model.base_model  # a causal LM's transformer without its head: no [B, T, vocab] logits
    out: np.ndarray | None = None
    done = 0
    for idx in _batches(lengths, budget):
        T = max(lengths[i] for i in idx)
        batch = torch.full((len(idx), T), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), T), dtype=torch.long)
        for row, i in enumerate(idx):  # right padding: causal models never read what follows a position
            batch[row, : lengths[i]] = torch.tensor(ids[i])
            mask[row, : lengths[i]] = 1
        states = _hidden(model, body(input_ids=batch.to(model.device), attention_mask=mask.to(model.device),
                                     output_hidden_states=True))
        hidden = torch.stack(states)  # [L+1, B, T, D]
        if pool == "cls":
            vec = hidden[:, :, 0]
        else:
            m = mask.to(hidden.device, hidden.dtype)[None, :, :, None]
            vec = (hidden * m).sum(2) / m.sum(2).clamp(min=1e-9)
        if out is None:
            out = np.zeros((hidden.shape[0], len(texts), hidden.shape[-1]), np.float32)
        out[:, idx] = vec.float().cpu().numpy()
        done += len(idx)
        if progress:
            progress(done, len(texts))
    return out


@torch.inference_mode()
def _image_features(model, images: list, progress: Progress | None) -> np.ndarray:
    from ..vision.patch_attention import prepare

    prefix = len(model.prefix_names)
    kwargs = {"interpolate_pos_encoding": True} if model.interpolate else {}
    out: np.ndarray | None = None
    for start in range(0, len(images), IMAGE_BATCH):
        chunk = images[start : start + IMAGE_BATCH]
        pixels = np.concatenate([prepare(model, im, square=True).pixel_values for im in chunk])
        res = model.model(pixel_values=torch.from_numpy(pixels).to(model.device), output_hidden_states=True, **kwargs)
        hidden = torch.stack(_hidden(model, res))  # [L+1, B, T, D]
        vec = hidden[:, :, 0] if prefix else hidden.mean(dim=2)
        if out is None:
            out = np.zeros((hidden.shape[0], len(images), hidden.shape[-1]), np.float32)
        out[:, start : start + len(chunk)] = vec.float().cpu().numpy()
        if progress:
            progress(start + len(chunk), len(images))
    return out


def layer_features(
    model: LoadedModel, inputs: list, token_budget: int = TOKEN_BUDGET, progress: Progress | None = None
) -> np.ndarray:
    """Pooled vectors of every layer, float32 `[L + 1, N, D]` (layer 0 = embedding output), in input order.

    `inputs`: texts for a text encoder or causal decoder; PIL images for an image encoder. `token_budget` caps
    the padded tokens of one forward batch. `progress(done, total)` is called after each batch. Not normalised
    (CKA centres; mutual k-NN uses cosine). Raises CompareError for empty inputs, a model without hidden states,
    or NaN/inf features.
    """
    pooling_name(model)  # refuses models that have no layers of vectors
    if getattr(model, "kind", "") == "image":
        if isinstance(inputs, (str, bytes)) or not len(inputs):
            raise CompareError("Give a non-empty list of images to compare the layers on.")
        feats = _image_features(model, list(inputs), progress)
    else:
        feats = _text_features(model, check_texts(inputs), int(token_budget), progress)
    check_finite(feats, model.name)
    return feats
