"""Integrated gradients over input token embeddings (Sundararajan et al. 2017), batched and memory-bounded.

For an objective f of the input embeddings x `[T, D]` and a baseline b, token t's score is
    (x_t - b_t) · mean over alpha of ∇f(b + alpha (x - b))_t,
with `steps` midpoint values of alpha. The scores sum to f(x) - f(b) up to the integration error, which
:attr:`IGResult.completeness` reports.

The baseline keeps special tokens ([CLS], [SEP], <s>, ...) and replaces every other token's embedding with the pad
token's (else mask, else unk, else zeros): "the same frame, with the words taken out".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import settings
from .inputs import Encoded, baseline_token_id

if TYPE_CHECKING:
    from ..models import LoadedModel

# (model output, batch size) -> the objective per batch row, float `[B]`
Objective = Callable[[object, int], torch.Tensor]


@dataclass(frozen=True)
class IGResult:
    """scores: float64 `[T]`; value = f(x); baseline_value = f(baseline); steps used; baseline token name."""

    scores: np.ndarray
    value: float
    baseline_value: float
    steps: int
    baseline: str

    @property
    def completeness(self) -> float:
        """|Σ scores − (f(x) − f(b))| / |f(x) − f(b)|; 0 when f(x) = f(b) and the scores sum to 0."""
        delta = self.value - self.baseline_value
        error = abs(float(self.scores.sum()) - delta)
        if abs(delta) < 1e-12:
            return 0.0 if error < 1e-9 else float("inf")
        return error / abs(delta)


@contextmanager
def replaced_embeddings(model: LoadedModel, embeds: torch.Tensor) -> Iterator[None]:
    """Within the block, this thread's forward passes see `embeds` `[B, T, D]` as the token embeddings.

    A forward hook on the input-embedding layer; other threads sharing the cached model are left alone (the hook
    only acts in the thread that installed it), so a concurrent request never sees these embeddings.
    """
    owner = threading.get_ident()

    def hook(_module, _inputs, output):
        if threading.get_ident() == owner:
            return embeds.to(output.dtype)
        return None

    handle = model.model.get_input_embeddings().register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _repeat(inputs: dict, n: int) -> dict:
    return {k: v.expand(n, -1) for k, v in inputs.items()}


def baseline_embeddings(model: LoadedModel, enc: Encoded) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(x, b, name): the token embeddings `[1, T, D]` and the baseline, which keeps special and padding tokens."""
    layer = model.model.get_input_embeddings()
    with torch.no_grad():
        x = layer(enc.ids).float()
        base_id, name = baseline_token_id(model)
        fill = layer(torch.tensor([base_id], device=enc.ids.device)).float()[0] if base_id is not None else 0.0
    ordinary = torch.tensor(
        [not s for s in enc.special], device=x.device
    ) & enc.mask[0].bool()  # padding (SigLIP's max_length) stays as it is, like the special tokens
    b = x.clone()
    b[0, ordinary] = fill
    return x, b, name


def integrated_gradients(
    model: LoadedModel, enc: Encoded, objective: Objective, steps: int, **call
) -> IGResult:
    """Integrated gradients of `objective` with respect to the token embeddings of `enc`.

    `call` holds extra keyword arguments for the model (e.g. `logits_to_keep=1` for a causal LM).

    Steps are evaluated in batches of at most `attribution_batch_tokens // T` rows (the memory bound); gradients are
    taken with `torch.autograd.grad` on the interpolated embeddings only, so the shared model's parameters never
    receive a `.grad`.
    """
    with torch.inference_mode(False):
        x, b, name = baseline_embeddings(model, enc)
    T = x.shape[1]
    inputs = enc.inputs()
    alphas = (torch.arange(steps, dtype=torch.float32, device=x.device) + 0.5) / steps
    batch = max(1, settings.get().attribution_batch_tokens // max(T, 1))
    total = torch.zeros_like(x[0])  # [T, D]
    for chunk in alphas.split(batch):
        xa = (b + chunk[:, None, None] * (x - b)).requires_grad_(True)  # [B, T, D]
        # enable_grad alone does not leave inference mode, which a caller (a cached page function) may be in
        with torch.inference_mode(False), torch.enable_grad(), replaced_embeddings(model, xa):
            values = objective(model.model(**_repeat(inputs, len(chunk)), **call), len(chunk))
            (grad,) = torch.autograd.grad(values.sum(), xa)
        total += grad.sum(0)
    scores = ((x - b)[0] * total / steps).sum(-1)  # [T]
    with torch.no_grad(), replaced_embeddings(model, torch.cat([x, b])):
        ends = objective(model.model(**_repeat(inputs, 2), **call), 2)
    return IGResult(scores.double().cpu().numpy(), float(ends[0]), float(ends[1]), steps, name)
