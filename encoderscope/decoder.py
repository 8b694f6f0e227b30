"""The causal decoder at work: next-token guesses, and attention plus guesses from one forward pass.

Loading lives in `models.load_decoder`; the bundled GGUF's conversion cache in `encoderscope.gguf_cache`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from .attention_maps import AttentionResult, attention

if TYPE_CHECKING:
    from .models import LoadedModel


@torch.inference_mode()
def next_tokens(model: LoadedModel, text: str, k: int = 5) -> list[tuple[str, float]]:
    """Top-k next tokens after `text` with their probabilities: [(token text, p), ...].

    A text longer than the model's limit keeps its last `model.max_length` tokens (the ones next to the guess).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("The text is empty.")
    ids = model.tokenizer(text, return_tensors="pt", verbose=False)["input_ids"][:, -model.max_length :]
    return _top_k(model.model(input_ids=ids.to(model.device)).logits[0, -1], model.tokenizer, k)


def _top_k(logits: torch.Tensor, tokenizer, k: int) -> list[tuple[str, float]]:
    """`logits` `[vocab]` -> the k most likely tokens as (text, probability)."""
    top = torch.topk(torch.softmax(logits.float(), dim=-1), k)
    return [(tokenizer.decode([int(i)]), float(p)) for p, i in zip(top.values, top.indices, strict=True)]


class _KeepLastLogits:
    """Stands in for a causal LM for one call: forwards to it and keeps the last position's logits `[vocab]`.

    A fresh object per request, so concurrent requests sharing the cached model never see each other's logits.
    """

    def __init__(self, model):
        self.inner, self.logits = model, None

    def __call__(self, *args, **kwargs):
        out = self.inner(*args, **kwargs)
        self.logits = out.logits[0, -1]
        return out

    def __getattr__(self, name):  # config, parameters(), ... come from the real model
        return getattr(self.inner, name)


def attention_and_next_tokens(
    model: LoadedModel, text: str, max_length: int | None = None, k: int = 5
) -> tuple[AttentionResult, list[tuple[str, float]]]:
    """`(AttentionResult, top-k next tokens)` of a causal LM for `text`, from one forward pass when it fits.

    The attention covers the first `max_length` tokens; when the text is longer, the next-token guess is
    computed separately from the text's last tokens (see :func:`next_tokens`).
    """
    capture = _KeepLastLogits(model.model)
    res = attention(replace(model, model=capture), text, max_length=max_length)
    if res.truncated:
        return res, next_tokens(model, text, k)
    return res, _top_k(capture.logits, model.tokenizer, k)
