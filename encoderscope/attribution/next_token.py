"""Which input tokens raise the decoder's log-probability of its next token? `es.token_attribution`.

Integrated gradients (`integrated.py`) of log p(target | text) at the last position with respect to the input token
embeddings; the baseline keeps special tokens (and the first token, the model's attention sink) and replaces the
others with the pad token's embedding. The scores
sum to log p(target | text) − log p(target | baseline), up to `completeness`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import UserFacingError
from .inputs import Encoded, clamp_steps, gradient_limit
from .integrated import integrated_gradients
from .lens import decoder_ids

if TYPE_CHECKING:
    from ..models import LoadedModel


@dataclass(frozen=True)
class TokenAttribution:
    """tokens `[T]`; scores float64 `[T]` (signed: > 0 raises the target's log-probability); special bool `[T]`;
    target (decoded) and target_id; logprob = log p(target | text); baseline_logprob = the same for the baseline;
    completeness = |Σ scores − (logprob − baseline_logprob)| / |logprob − baseline_logprob|; steps; method; notes."""

    tokens: list[str]
    scores: np.ndarray
    special: np.ndarray
    target: str
    target_id: int
    logprob: float
    baseline_logprob: float
    completeness: float
    steps: int
    method: str = "integrated_gradients"
    notes: tuple[str, ...] = field(default=())

    @property
    def total(self) -> float:
        """Σ scores: the change logprob − baseline_logprob, up to the completeness error."""
        return float(np.sum(self.scores))


def _target_id(model: LoadedModel, ids: torch.Tensor, target) -> tuple[int, list[str]]:
    """The target token id: None = the model's own top next token; an int = a vocabulary id; a string = its first
    token (with a note when it has more than one)."""
    if target is None:
        with torch.inference_mode():
            return int(model.model(input_ids=ids).logits[0, -1].argmax()), []
    if isinstance(target, (int, np.integer)):
        size = model.model.get_output_embeddings().weight.shape[0]
        if not 0 <= int(target) < size:
            raise UserFacingError(f"Target id {target} is outside the vocabulary (0 to {size - 1}).")
        return int(target), []
    pieces = model.tokenizer(str(target), add_special_tokens=False)["input_ids"]
    if not pieces:
        raise UserFacingError("The target token is empty: type the next word to explain, e.g. ' Paris'.")
    notes = []
    if len(pieces) > 1:
        first = model.tokenizer.decode([pieces[0]])
        notes.append(f"{target!r} is {len(pieces)} tokens; the first, {first!r}, is explained.")
    return int(pieces[0]), notes


def token_attribution(
    model: LoadedModel, text: str, target=None, method: str = "integrated_gradients", steps: int = 32
) -> TokenAttribution:
    """Integrated-gradients attribution of the next token's log-probability to `text`'s tokens (module docstring).

    Long texts keep their last `attribution_max_tokens` tokens (the memory bound), with a note.
    """
    if method != "integrated_gradients":
        raise UserFacingError(f"Unknown method {method!r}: token attribution supports 'integrated_gradients'.")
    if model.kind != "decoder":
        raise UserFacingError(f"Next-token attribution needs a causal decoder; {model.name} is an encoder.")
    ids, notes = decoder_ids(model, text)
    limit = gradient_limit(model)
    if ids.shape[1] > limit:
        notes = [f"The text has {ids.shape[1]} tokens; integrated gradients used the last {limit} (a backward pass "
                 "per step, so this server caps the tokens)."]
        ids = ids[:, -limit:]
    steps, steps_note = clamp_steps(steps)
    target_id, target_notes = _target_id(model, ids, target)
    special_ids = set(model.tokenizer.all_special_ids)
    row = ids[0].tolist()
    special = [i in special_ids for i in row]
    # Without a start token the first position is the model's attention sink: replacing it sends activations
    # through sharp jumps (the integral no longer converges), so the baseline keeps it, as it keeps <s>.
    kept = [True, *special[1:]]
    if not special[0]:
        notes.append("The first token is kept in the baseline (the model's attention sink), so its score is 0.")
    enc = Encoded(ids, torch.ones_like(ids), {}, model.tokenizer.convert_ids_to_tokens(row), kept, len(row), len(row))

    def objective(output, n: int) -> torch.Tensor:
        return torch.log_softmax(output.logits[:, -1].float(), dim=-1)[:, target_id]

    ig = integrated_gradients(model, enc, objective, steps, logits_to_keep=1)
    notes = [*notes, *target_notes, steps_note, f"Baseline: every non-special token replaced by {ig.baseline!r}."]
    return TokenAttribution(
        tokens=enc.tokens,
        scores=ig.scores,
        special=np.asarray(special, bool),
        target=model.tokenizer.decode([target_id]),
        target_id=target_id,
        logprob=ig.value,
        baseline_logprob=ig.baseline_value,
        completeness=ig.completeness,
        steps=steps,
        notes=tuple(n for n in notes if n),
    )
