"""Deletion tests of the text explanations: `similarity` (for `explain_similarity`) and `next_token` (for
`token_attribution`).

Only ordinary tokens are removed; special tokens ([CLS], [SEP], <s>, padding) stay. The ids are the explanation's
own tokens mapped back through the tokenizer (`convert_tokens_to_ids`), so the curves test exactly the input
the explanation scored. Shapes: T tokens, n removable ones, B states per step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import settings
from ..embeddings import pooling_of
from ..errors import UserFacingError
from .curves import Curves, curves

if TYPE_CHECKING:
    from ..attribution.next_token import TokenAttribution
    from ..attribution.similarity import SimilarityExplanation
    from ..models import LoadedModel

REMOVALS = ("delete", "mask")


def token_ids(model: LoadedModel, tokens: list[str]) -> list[int]:
    """The ids of the tokenizer's own `tokens` (the inverse of `convert_ids_to_tokens`); a UserFacingError when
    a token is not in this model's vocabulary (an explanation made with another model)."""
    tok = model.tokenizer
    ids = tok.convert_tokens_to_ids(list(tokens))
    unk = tok.unk_token_id
    for token, i in zip(tokens, ids, strict=True):
        if i is None or (i == unk and token != tok.unk_token):
            raise UserFacingError(f"The token {token[:40]!r} is not in {model.name}'s vocabulary: was the explanation "
                                  "made with another model?")
    return [int(i) for i in ids]


def filler_id(model: LoadedModel) -> int:
    """The token a "mask" removal writes: the mask token, else pad."""
    tok = model.tokenizer
    for value in (tok.mask_token_id, tok.pad_token_id):
        if isinstance(value, int) and value >= 0:
            return value
    raise UserFacingError(f"{model.name} has neither a mask nor a pad token: use removal='delete'.")


def edited(ids: list[int], positions: np.ndarray, removed: np.ndarray, removal: str, filler: int) -> list[int]:
    """`ids` with the tokens at `positions[removed]` dropped ("delete") or replaced by `filler` ("mask")."""
    gone = set(positions[removed].tolist())
    if removal == "delete":
        return [t for i, t in enumerate(ids) if i not in gone]
    return [filler if i in gone else t for i, t in enumerate(ids)]


def padded(rows: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask `[B, T]` (long)."""
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[b, : len(r)] = 1
    return ids.to(device), mask.to(device)


def _check_removal(removal: str) -> str:
    if removal not in REMOVALS:
        raise UserFacingError(f"Unknown removal {removal!r}: use one of {', '.join(REMOVALS)}.")
    return removal


def _pad_id(model: LoadedModel) -> int:
    pad = model.tokenizer.pad_token_id
    return int(pad) if isinstance(pad, int) and pad >= 0 else 0


def _capped(n_tokens: int) -> None:
    top = max(settings.get().attribution_max_tokens, settings.get().max_tokens)
    if n_tokens > top:
        raise UserFacingError(f"The text has {n_tokens} tokens; this server tests explanations of at most {top}.")


@torch.inference_mode()
def similarity(
    model: LoadedModel, ex: SimilarityExplanation, side: str = "b", removal: str = "delete", steps: int = 10,
    seeds: int = 5,
) -> Curves:
    """The deletion test of `ex` (an `explain_similarity` result of `model`) on one side's tokens.

    side "a" or "b": whose tokens are removed; the other text's vector stays fixed. removal "delete" drops the
    ids (special tokens kept) and re-runs the model; "mask" writes the mask token (else pad) in their place.
    The value is the cosine `ex` explains (centred on `ex.centre` when the explanation was centred), so
    `deletion[0]` equals `ex.cosine` up to float rounding. One batched forward pass per step.
    """
    from ..attribution.similarity import pooled, vectors_cosine

    if side not in ("a", "b"):
        raise UserFacingError(f"side must be 'a' or 'b', got {side!r}.")
    _check_removal(removal)
    tokens, special, scores = (
        (ex.tokens_a, ex.special_a, ex.scores_a) if side == "a" else (ex.tokens_b, ex.special_b, ex.scores_b)
    )
    other = ex.tokens_b if side == "a" else ex.tokens_a
    _capped(max(len(tokens), len(other)))
    ids, other_ids = token_ids(model, tokens), token_ids(model, other)
    positions = np.flatnonzero(~np.asarray(special, bool))  # [n] the removable (ordinary) tokens
    pool, pad = pooling_of(model), _pad_id(model)
    filler = filler_id(model) if removal == "mask" else pad
    keep_length = pool.padding == "max_length"  # SigLIP pools the last position of a fixed-length input
    centre = getattr(ex, "centre", None)

    def vectors(rows: list[list[int]]) -> torch.Tensor:  # [B, D]
        if keep_length:
            rows = [r + [pad] * (len(ids) - len(r)) for r in rows]
        batch, mask = padded(rows, pad, model.device)
        extra = {"token_type_ids": torch.zeros_like(batch)} if _takes_token_types(model) else {}
        return pooled(model.model(input_ids=batch, attention_mask=mask, **extra), mask, pool).double()

    fixed = vectors([other_ids])[0]

    def evaluate(states: list[np.ndarray]) -> np.ndarray:
        rows = [edited(ids, positions, removed, removal, filler) for removed in states]
        return vectors_cosine(vectors(rows), fixed, centre).cpu().numpy()

    return curves(evaluate, [np.asarray(scores)[positions]], steps, seeds,
                  measure="centred cosine" if centre is not None else "cosine", unit="token", removal=removal)[0]


def _takes_token_types(model: LoadedModel) -> bool:
    return "token_type_ids" in getattr(model.tokenizer, "model_input_names", ())


@torch.inference_mode()
def next_token(decoder: LoadedModel, text: str | None, ex: TokenAttribution, removal: str = "delete",
               steps: int = 10, seeds: int = 5) -> Curves:
    """The deletion test of `ex` (a `token_attribution` result of `decoder`): log p(ex.target | input) as the
    highest-scored input tokens are removed. `text` is the explained text (the curve reads `ex.tokens`, the
    tokens the attribution actually scored, which are its last `attribution_max_tokens`).

    Special tokens and the first token (which the attribution's baseline keeps: the attention sink) stay.
    `deletion[0]` equals `ex.logprob` up to float rounding. One batched forward pass per step.
    """
    from ..attribution.inputs import check_text

    if text is not None:
        check_text(text)
    _check_removal(removal)
    if decoder.kind != "decoder":
        raise UserFacingError(f"The next-token deletion test needs a causal decoder; {decoder.name} is an encoder.")
    _capped(len(ex.tokens))
    ids = token_ids(decoder, ex.tokens)
    removable = ~np.asarray(ex.special, bool)
    removable[0] = False
    positions = np.flatnonzero(removable)
    pad = _pad_id(decoder)
    filler = filler_id(decoder) if removal == "mask" else pad

    def evaluate(states: list[np.ndarray]) -> np.ndarray:
        rows = [edited(ids, positions, removed, removal, filler) for removed in states]
        batch, mask = padded(rows, pad, decoder.device)
        last = mask.sum(1) - 1  # [B] each row's last real position (right padding: causal rows never see it)
        keep = torch.unique(last)
        logits = decoder.model(input_ids=batch, attention_mask=mask, logits_to_keep=keep).logits  # [B, K, V]
        column = torch.searchsorted(keep, last)
        rows_logits = logits[torch.arange(len(rows)), column].float()  # [B, V]
        return torch.log_softmax(rows_logits, -1)[:, ex.target_id].double().cpu().numpy()

    return curves(evaluate, [np.asarray(ex.scores)[positions]], steps, seeds, measure="log-probability",
                  unit="token", removal=removal)[0]
