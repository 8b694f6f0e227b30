"""Attention masks, and an encoder run under a mask it was not trained with.

Masks are boolean arrays, True = the query (row) may attend to the key (column):
  bidirectional(T), causal(T), prefix_lm(T, prefix): `[T, T]`; cross_attention(Tq, Tk): `[Tq, Tk]`;
  padding(lengths): `[B, T, T]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .attention_maps import format_attention
from .tokens import piece_text, word_ids

if TYPE_CHECKING:
    from .models import LoadedModel

MASKS = ("bidirectional", "causal")


def bidirectional(T: int) -> np.ndarray:
    """Encoder: every token sees every token. `[T, T]` all True."""
    return np.ones((T, T), bool)


def causal(T: int) -> np.ndarray:
    """Decoder: token i sees tokens 0..i (lower triangle, diagonal included). `[T, T]`."""
    return np.tril(np.ones((T, T), bool))


def prefix_lm(T: int, prefix: int) -> np.ndarray:
    """Prefix-LM (T5-style LM, UniLM): bidirectional inside the first `prefix` tokens, causal after. `[T, T]`."""
    if not 0 <= prefix <= T:
        raise ValueError(f"prefix length {prefix} is out of range 0..{T}")
    cols = np.arange(T)
    return causal(T) | (cols[None, :] < prefix) & (cols[:, None] < prefix)


def cross_attention(n_queries: int, n_keys: int) -> np.ndarray:
    """Encoder-decoder cross-attention: every decoder token sees every encoder token. `[Tq, Tk]`."""
    return np.ones((n_queries, n_keys), bool)


def padding(lengths: list[int]) -> np.ndarray:
    """Batch padding mask `[B, T, T]` with T = max(lengths): keys past a sentence's length are blocked.

    Rows of padding positions are blocked too (their outputs are discarded).
    """
    T = max(lengths)
    idx = np.arange(T)
    valid = idx[None, :] < np.asarray(lengths)[:, None]  # [B, T]
    return valid[:, :, None] & valid[:, None, :]


def additive(mask: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    """A boolean `[T, T]` mask as the 4-D additive mask transformers accepts: `[1, 1, T, T]`, 0 or -inf.

    (A boolean 4-D mask is not honoured by BERT-likes in transformers 5; the additive form is.)
    """
    out = torch.zeros((1, 1) + mask.shape, dtype=dtype)
    out.masked_fill_(~torch.from_numpy(mask), float("-inf"))
    return out


@dataclass(frozen=True)
class MaskedRun:
    """One encoder forward pass under a mask.

    tokens: T tokens; hidden: `[L + 1, T, D]` (0 = embedding output); weights: `[L, H, T, T]`;
    trained_causal: the model was trained with a causal mask (CLIP's text encoder), so its bidirectional run,
    not its causal one, is the experiment.
    """

    tokens: list[str]
    hidden: np.ndarray
    weights: np.ndarray
    mask: str
    trained_causal: bool = False


@torch.inference_mode()
def run(model: LoadedModel, text: str, mask: str = "bidirectional", max_length: int | None = None) -> MaskedRun:
    """Run `model` on `text` with a bidirectional or a causal mask.

    A mask that differs from the one the model was trained with is passed as a 4-D additive mask, which replaces
    the model's own: a causal mask for BERT-likes and T5, an all-ones (all-zero additive) one for CLIP's causal
    text encoder, which would otherwise apply its causal mask itself.
    """
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, not {mask!r}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("The text is empty.")
    enc = model.tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length or model.max_length)
    ids = enc["input_ids"]
    T = ids.shape[1]
    inputs = {k: v.to(model.device) for k, v in enc.items() if k in ("input_ids", "token_type_ids")}
    dtype = next(model.model.parameters()).dtype
    if mask == "causal":
        attn = additive(causal(T), dtype)
    elif model.causal:
        attn = additive(bidirectional(T), dtype)
    else:
        attn = torch.ones((1, T), dtype=torch.long)
    out = model.model(**inputs, attention_mask=attn.to(model.device), output_attentions=True, output_hidden_states=True)
    hidden = torch.stack([h[0] for h in out.hidden_states]).float().cpu().numpy()
    weights = format_attention(out.attentions, T)
    tokens = model.tokenizer.convert_ids_to_tokens(ids[0].tolist())
    return MaskedRun(tokens, hidden, weights, mask, trained_causal=model.causal)


def hidden_states(model: LoadedModel, text: str, mask: str = "bidirectional") -> np.ndarray:
    """Hidden states `[layers + 1, T, D]` of `text` under `mask` ("bidirectional" or "causal"); 0 = embeddings.

    The mask is what the name says whatever the model was trained with: CLIP's text encoder, trained causally,
    reads both ways under "bidirectional" (an experiment) and as it was trained under "causal".
    """
    return run(model, text, mask).hidden


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity along the last axis: `[..., D]` x `[..., D]` -> `[...]`."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    num = (a64 * b64).sum(-1)
    den = np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1)
    return np.divide(num, den, out=np.ones_like(num), where=den > 0)


def first_difference(tokens_a: list[str], tokens_b: list[str]) -> int:
    """Index of the first position where the token sequences differ (min length if one is a prefix)."""
    for i, (a, b) in enumerate(zip(tokens_a, tokens_b, strict=False)):
        if a != b:
            return i
    return min(len(tokens_a), len(tokens_b))


@dataclass(frozen=True)
class ContextProbe:
    """The "bank" experiment: two sentences that share a beginning, under both masks.

    similarity[mask]: `[L + 1, N]` cosine between the sentences' hidden states at positions 0..N-1,
    N = min(T_a, T_b); diverge: first differing token index (== N when one sentence is a prefix).
    """

    tokens_a: list[str]
    tokens_b: list[str]
    diverge: int
    similarity: dict

    @property
    def identical(self) -> bool:
        return self.tokens_a == self.tokens_b


def context_probe(model: LoadedModel, text_a: str, text_b: str) -> ContextProbe:
    runs = {m: (run(model, text_a, m), run(model, text_b, m)) for m in MASKS}
    a, b = runs["bidirectional"]
    n = min(len(a.tokens), len(b.tokens))
    sims = {m: cosine(ra.hidden[:, :n], rb.hidden[:, :n]) for m, (ra, rb) in runs.items()}
    return ContextProbe(a.tokens, b.tokens, first_difference(a.tokens, b.tokens), sims)


def find_word(tokens: list[str], word: str) -> int | None:
    """Index of the first token of `word` in a token list (WordPiece, BPE, SentencePiece or CLIP pieces;
    case-insensitive), or None. A match starts at a token and may extend over the pieces of the same word."""
    target = word.strip().lower()
    if not target:
        return None
    words = word_ids(tokens)
    clean = [piece_text(t).lower() for t in tokens]
    for i in range(len(clean)):
        if words[i] is None or tokens[i].startswith("##"):
            continue
        joined, j = clean[i], i + 1
        while joined != target and len(joined) < len(target) and j < len(clean) and words[j] == words[i]:
            joined, j = joined + clean[j], j + 1
        if joined == target:
            return i
    return None
