"""The logit lens of a causal decoder (nostalgebraist 2020): what would the model say if it stopped at layer l?

Each layer's hidden state goes through the model's final norm, then its unembedding (the LM head), then the
model's own logit post-processing (Gemma-2/3: soft-capping, tanh(z / cap) * cap; Granite: division by
`logits_scaling`; Cohere: multiplication by `logit_scale`). The last hidden state that transformers returns has
already been through the final norm, so it goes through the head only. The last row is checked against the
model's own logits: a model whose last state is not normed gets the norm there too, and a model whose logits
neither reading reproduces is refused, so the last row is always the model's real prediction.
Shapes: L layers, T positions, k guesses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import UserFacingError
from .inputs import check_text

if TYPE_CHECKING:
    from ..models import LoadedModel

_NORMS = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "final_norm")


@dataclass(frozen=True)
class LogitLens:
    """tokens:      the input's tokens `[T]`
    top_tokens:  `[L+1][T][k]` strings, decoded as `decoder.next_tokens` decodes them; row l is layer l's guess
                 for the token after each position (row 0: the embedding output, row L: the model's output)
    top_ids:     int `[L+1, T, k]`; top_probs: float32 `[L+1, T, k]`
    target:      the model's own next token after the last position (decoded); target_id its id
    target_prob: float32 `[L+1]`, the target's probability read at every layer (last position)
    notes:       sentences for the user (truncation, the model's own logit post-processing applied to every row)
    """

    tokens: list[str]
    top_tokens: list
    top_ids: np.ndarray
    top_probs: np.ndarray
    target: str
    target_id: int
    target_prob: np.ndarray
    notes: tuple[str, ...] = field(default=())

    @property
    def num_layers(self) -> int:
        return self.top_probs.shape[0] - 1


def final_norm(model: torch.nn.Module) -> torch.nn.Module:
    """The decoder's final norm (Llama `model.norm`, GPT-2 `transformer.ln_f`, ...), or a UserFacingError."""
    base = getattr(model, "base_model", model)
    for owner in (base, getattr(base, "decoder", None), model):
        for name in _NORMS:
            module = getattr(owner, name, None) if owner is not None else None
            if isinstance(module, torch.nn.Module):
                return module
    raise UserFacingError(f"Cannot find the final norm of {type(model).__name__}, so the logit lens does not apply.")


def logit_post(model: torch.nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], str | None]:
    """(post, note): the model's own processing of its LM head's output `[T, V]` (identity for most models),
    and a sentence saying what it is, or None."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    cap = getattr(config, "final_logit_softcapping", None)
    divide = getattr(config, "logits_scaling", None)  # Granite
    multiply = getattr(config, "logit_scale", None)  # Cohere
    if cap:
        return (lambda z: torch.tanh(z / cap) * cap), f"Every row's logits are soft-capped at {cap:g}, as the model's are."
    if divide and float(divide) != 1.0:
        return (lambda z: z / divide), f"Every row's logits are divided by {divide:g}, as the model's are."
    if multiply and float(multiply) != 1.0:
        return (lambda z: z * multiply), f"Every row's logits are multiplied by {multiply:g}, as the model's are."
    return (lambda z: z), None


def _last_reading(model: LoadedModel, head, norm, post, last: torch.Tensor, logits: torch.Tensor) -> bool:
    """Whether the last hidden state `last` `[T, D]` is read as it is (True: already normed) or through the final
    norm (False) to give the model's own `logits` `[T, V]`; a UserFacingError when neither does."""
    for normed in (True, False):
        if torch.allclose(post(head(last if normed else norm(last)).float()), logits, atol=1e-3, rtol=1e-4):
            return normed
    raise UserFacingError(
        f"The logit lens cannot reproduce {model.name}'s own prediction from its last hidden state (its logits are "
        "processed in a way this app does not know), so no row of the lens would be what the model says."
    )


def decoder_ids(model: LoadedModel, text: str, max_length: int | None = None) -> tuple[torch.Tensor, list[str]]:
    """`[1, T]` input ids of `text`, keeping the last `max_length` tokens (those next to the guess; default and cap:
    the model's limit), and notes."""
    check_text(text)
    ids = model.tokenizer(text, return_tensors="pt", verbose=False)["input_ids"]
    limit = min(model.max_length, max_length or model.max_length)
    notes = []
    if ids.shape[1] > limit:
        notes.append(f"The text has {ids.shape[1]} tokens; only the last {limit} were used.")
        ids = ids[:, -limit:]
    return ids.to(model.device), notes


def first_layer_above(target_prob: np.ndarray, threshold: float = 0.5) -> int | None:
    """The first layer whose probability `target_prob` `[L+1]` reaches `threshold`, or None when none does."""
    hits = np.flatnonzero(np.asarray(target_prob, dtype=np.float64) >= threshold)
    return int(hits[0]) if hits.size else None


@torch.inference_mode()
def logit_lens(model: LoadedModel, text: str, k: int = 5, max_length: int | None = None) -> LogitLens:
    """The logit lens of `text` under the causal LM `model` (see the module docstring). One forward pass, then
    one unembedding per layer (memory: one `[T, vocab]` block at a time). Long texts keep their last
    `max_length` tokens (default: the model's limit), with a note."""
    if model.kind != "decoder":
        raise UserFacingError(f"The logit lens needs a causal decoder with an LM head; {model.name} is an encoder.")
    ids, notes = decoder_ids(model, text, max_length)
    lm = model.model
    out = lm(input_ids=ids, output_hidden_states=True)
    hidden = out.hidden_states  # L+1 x [1, T, D]
    head, norm = lm.get_output_embeddings(), final_norm(lm)
    post, note = logit_post(lm)
    notes += [note] if note else []
    logits = out.logits[0].float()  # [T, V]
    k = int(max(1, min(k, logits.shape[-1])))
    target_id = int(logits[-1].argmax())
    # transformers returns the last hidden state after the final norm; verify instead of assuming
    last_normed = _last_reading(model, head, norm, post, hidden[-1][0], logits)
    L1, T = len(hidden), ids.shape[1]
    top_ids = np.zeros((L1, T, k), np.int64)
    top_probs = np.zeros((L1, T, k), np.float32)
    target_prob = np.zeros(L1, np.float32)
    for layer, h in enumerate(hidden):
        x = h[0] if (layer == L1 - 1 and last_normed) else norm(h[0])
        probs = torch.softmax(post(head(x).float()), dim=-1)  # [T, V]
        top = torch.topk(probs, k, dim=-1)
        top_ids[layer], top_probs[layer] = top.indices.cpu().numpy(), top.values.cpu().numpy()
        target_prob[layer] = float(probs[-1, target_id])
    decode = model.tokenizer.decode
    vocab = {int(i): decode([int(i)]) for i in np.unique(top_ids)}
    top_tokens = [[[vocab[int(i)] for i in top_ids[layer, t]] for t in range(T)] for layer in range(L1)]
    return LogitLens(
        tokens=model.tokenizer.convert_ids_to_tokens(ids[0].tolist()),
        top_tokens=top_tokens,
        top_ids=top_ids,
        top_probs=top_probs,
        target=decode([target_id]),
        target_id=target_id,
        target_prob=target_prob,
        notes=tuple(notes),
    )
