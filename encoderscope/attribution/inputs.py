"""Input handling shared by the attribution methods: empty-text checks, token caps with notes, baselines.

Shapes: T tokens, D the embedding width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .. import settings
from ..errors import UserFacingError

if TYPE_CHECKING:
    from ..models import LoadedModel


@dataclass(frozen=True)
class Encoded:
    """One tokenized text, as the model sees it.

    ids:     long `[1, T]`; mask: long `[1, T]` (all ones for one text); extra: other model inputs
             (token_type_ids) `[1, T]`; tokens: the tokenizer's tokens; special: bool per token;
    n_full:  tokens before truncation; limit: the cap applied.
    """

    ids: torch.Tensor
    mask: torch.Tensor
    extra: dict
    tokens: list[str]
    special: list[bool]
    n_full: int
    limit: int

    @property
    def truncated(self) -> bool:
        return self.n_full > self.limit

    def inputs(self) -> dict:
        """Keyword arguments for the model (input_ids, attention_mask, token_type_ids when the model has them)."""
        return {"input_ids": self.ids, "attention_mask": self.mask, **self.extra}


def check_text(text, label: str = "The text") -> str:
    """The text, or a UserFacingError when it is not a string or holds only whitespace."""
    if not isinstance(text, str) or not text.strip():
        raise UserFacingError(f"{label} is empty: type a sentence to explain.")
    return text


def encode(model: LoadedModel, text: str, limit: int, padding: bool | str = False) -> Encoded:
    """Tokenize `text` for `model`, keeping at most `limit` tokens (special tokens included).

    `padding="max_length"` pads to `limit` (SigLIP's text tower was trained that way and pools the last position).
    """
    tok = model.tokenizer
    full = tok(text, truncation=False, verbose=False)["input_ids"]
    # made outside inference mode, even inside a caller's: autograd (integrated gradients) cannot save
    # inference tensors for the backward pass, and the embedding layer saves the ids
    with torch.inference_mode(False):
        return _encoded(model, tok(text, truncation=True, max_length=limit, padding=padding, return_tensors="pt"),
                        len(full), limit)


def _encoded(model: LoadedModel, enc, n_full: int, limit: int) -> Encoded:
    """`enc` (the tokenizer's output for one text) as an Encoded on the model's device."""
    tok = model.tokenizer
    ids = enc["input_ids"]
    mask = enc.get("attention_mask", torch.ones_like(ids))
    extra = {"token_type_ids": enc["token_type_ids"]} if "token_type_ids" in enc else {}
    special_ids = set(tok.all_special_ids)
    row = ids[0].tolist()
    return Encoded(
        ids.to(model.device),
        mask.to(model.device),
        {k: v.to(model.device) for k, v in extra.items()},
        tok.convert_ids_to_tokens(row),
        [i in special_ids for i in row],
        n_full,
        limit,
    )


def truncation_note(label: str, enc: Encoded, why: str) -> str | None:
    """A sentence saying that `label` was cut to `enc.limit` tokens, or None when it was not."""
    if not enc.truncated:
        return None
    return f"{label} has {enc.n_full} tokens; only the first {enc.limit} were used ({why})."


def gradient_limit(model: LoadedModel, limit: int | None = None) -> int:
    """Tokens per text for a gradient method: the model's limit, the server's attribution cap and `limit`."""
    caps = [model.max_length, settings.get().attribution_max_tokens]
    if limit:
        caps.append(int(limit))
    return max(2, min(caps))


def clamp_steps(steps: int) -> tuple[int, str | None]:
    """`steps` bounded to [2, attribution_max_steps], with a note when it was lowered or raised."""
    top = settings.get().attribution_max_steps
    asked = int(steps)
    used = min(max(asked, 2), top)
    if used == asked:
        return used, None
    return used, f"Integrated gradients used {used} steps (asked for {asked}; this server allows 2 to {top})."


def baseline_token_id(model: LoadedModel) -> tuple[int | None, str]:
    """The token whose embedding replaces ordinary tokens in the baseline: pad, else mask, else unk.

    Returns (id, name); id None means the zero vector (a tokenizer with none of the three).
    """
    tok = model.tokenizer
    for attr in ("pad_token_id", "mask_token_id", "unk_token_id"):
        value = getattr(tok, attr, None)
        if isinstance(value, int) and value >= 0:
            return value, tok.convert_ids_to_tokens(value)
    return None, "zero vector"
