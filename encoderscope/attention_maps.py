"""Attention maps: extraction, head statistics, rollout and the token/word transformations.

`encoderscope.attention` (the package attribute) is the function :func:`attention`; this module holds it.

Shapes: L layers, H heads, T tokens. Attention weights are `[L, H, T, T]`, rows are queries and sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from .tokens import is_punctuation, join_pieces
from .tokens import word_ids as marker_word_ids

if TYPE_CHECKING:
    from .models import LoadedModel


@dataclass(frozen=True)
class AttentionResult:
    """Attention of one input.

    tokens:           the tokenizer's tokens, special tokens included, length T
    weights:          float32 `[L, H, T, T]`; weights[l, h, i, j] = attention of query i to key j
    sentence_b_start: index of the first token of `text_pair`, or None
    special:          bool `[T]`, True for special tokens ([CLS], [SEP], <s>, ...)
    word_ids:         per token, the index of the word it belongs to (None for special tokens)
    sequence_ids:     per token, 0 for sentence A, 1 for sentence B, None for special tokens
    n_input_tokens:   tokens the full input would have had before truncation
    causal:           True when the model attends left-to-right only (decoders, CLIP's text encoder): the
                      weights are lower-triangular
    """

    tokens: list[str]
    weights: np.ndarray
    sentence_b_start: int | None = None
    special: np.ndarray | None = None
    word_ids: tuple | None = None
    sequence_ids: tuple | None = None
    n_input_tokens: int = 0
    causal: bool = False
    model_name: str = ""

    @property
    def truncated(self) -> bool:
        return self.n_input_tokens > len(self.tokens)

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    @property
    def special_mask(self) -> np.ndarray:
        return np.zeros(len(self.tokens), bool) if self.special is None else self.special


def format_attention(attentions, n_tokens: int) -> np.ndarray:
    """Stack a transformers `attentions` tuple (L x `[1, H, T, T]`) into float32 `[L, H, T, T]`.

    Fails loudly when the model returned no weights (fused attention, or a config without them).
    """
    if not attentions or any(a is None for a in attentions):
        raise ValueError(
            "The model returned no attention weights. Load it with attn_implementation='eager' "
            "and call it with output_attentions=True."
        )
    stacked = torch.stack([a[0] for a in attentions]).float().cpu().numpy()
    if stacked.ndim != 4 or stacked.shape[-1] != n_tokens or stacked.shape[-2] != n_tokens:
        raise ValueError(
            f"Unexpected attention shape {stacked.shape}; expected [layers, heads, {n_tokens}, {n_tokens}]."
        )
    return stacked


def tokenize(model: LoadedModel, text: str, text_pair: str | None = None, max_length: int | None = None):
    """Tokenize with truncation to the model's limit. Returns (encoding, n_tokens_before_truncation)."""
    tok = model.tokenizer
    limit = max_length or model.max_length
    enc = tok(text, text_pair, return_tensors="pt", truncation=False, verbose=False)
    n_full = enc["input_ids"].shape[1]
    if n_full > limit:  # tokenize again, truncated; only long inputs pay twice
        strategy = "longest_first" if text_pair else True
        enc = tok(text, text_pair, return_tensors="pt", truncation=strategy, max_length=limit)
    return enc, n_full


def attention(
    model: LoadedModel, text: str, text_pair: str | None = None, max_length: int | None = None
) -> AttentionResult:
    """Run `model` on `text` (and `text_pair`) and return every layer's and head's attention.

    Inputs longer than the model's limit are truncated; check `result.truncated`.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("The text is empty.")
    pair = text_pair if text_pair and text_pair.strip() else None
    enc, n_full = tokenize(model, text, pair, max_length)
    ids = enc["input_ids"][0].tolist()
    inputs = {k: v.to(model.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.inference_mode():
        out = model.model(**inputs, output_attentions=True)
    weights = format_attention(out.attentions, len(ids))
    tok = model.tokenizer
    special_ids = set(tok.all_special_ids)
    special = np.array([i in special_ids for i in ids], dtype=bool)
    seq_ids = tuple(enc.sequence_ids(0)) if enc.encodings else tuple(None if s else 0 for s in special)
    tokens = tok.convert_ids_to_tokens(ids)
    # SentencePiece-backed tokenizers (SigLIP) report no word ids: read them from the pieces' '▁' markers.
    word_ids = tuple(enc.word_ids(0)) if enc.encodings else tuple(marker_word_ids(tokens, special))
    b_start = seq_ids.index(1) if 1 in seq_ids else None
    return AttentionResult(
        tokens=tokens,
        weights=weights,
        sentence_b_start=b_start,
        special=special,
        word_ids=word_ids,
        sequence_ids=seq_ids,
        n_input_tokens=n_full,
        causal=model.causal,
        model_name=model.name,
    )


# --- transformations (pure: result in, result out) -----------------------------------------------


def renormalize(weights: np.ndarray) -> np.ndarray:
    """Rows rescaled to sum to 1 (rows that sum to 0 stay 0). Any shape `[..., T, K]`."""
    sums = weights.sum(axis=-1, keepdims=True)
    return np.divide(weights, sums, out=np.zeros_like(weights), where=sums > 0)


def drop_special(res: AttentionResult) -> AttentionResult:
    """Remove special tokens as queries and keys, then renormalise each row."""
    keep = ~res.special_mask
    if not keep.any():
        return res
    idx = np.flatnonzero(keep)
    w = renormalize(res.weights[:, :, idx][:, :, :, idx])
    seq = tuple(res.sequence_ids[i] for i in idx) if res.sequence_ids else None
    return replace(
        res,
        tokens=[res.tokens[i] for i in idx],
        weights=w.astype(np.float32),
        special=np.zeros(len(idx), bool),
        word_ids=tuple(res.word_ids[i] for i in idx) if res.word_ids else None,
        sequence_ids=seq,
        sentence_b_start=seq.index(1) if seq and 1 in seq else None,
    )


def word_groups(res: AttentionResult) -> list[list[int]]:
    """Token indices grouped into words; each special token is its own group. Order is preserved."""
    groups: list[list[int]] = []
    last_key = object()
    for i in range(len(res.tokens)):
        word = res.word_ids[i] if res.word_ids else i
        seq = res.sequence_ids[i] if res.sequence_ids else 0
        key = ("special", i) if res.special_mask[i] or word is None else (seq, word)
        if key == last_key:
            groups[-1].append(i)
        else:
            groups.append([i])
        last_key = key
    return groups


def merge_word_pieces(res: AttentionResult) -> AttentionResult:
    """Merge word-pieces into words: average over query pieces, sum over key pieces (rows still sum to 1)."""
    groups = word_groups(res)
    if len(groups) == len(res.tokens):
        return res
    T, W = len(res.tokens), len(groups)
    # pool_q averages query rows, pool_k sums key columns: weights' = pool_q @ A @ pool_k
    pool_q = np.zeros((W, T), np.float32)
    pool_k = np.zeros((T, W), np.float32)
    for g, members in enumerate(groups):
        pool_q[g, members] = 1.0 / len(members)
        pool_k[members, g] = 1.0
    merged = np.einsum("wt,lhts,sv->lhwv", pool_q, res.weights, pool_k, optimize=True).astype(np.float32)
    tokens = [join_pieces([res.tokens[i] for i in members]) for members in groups]
    firsts = [members[0] for members in groups]
    seq = tuple(res.sequence_ids[i] for i in firsts) if res.sequence_ids else None
    return replace(
        res,
        tokens=tokens,
        weights=merged,
        special=res.special_mask[firsts],
        word_ids=tuple(range(W)),
        sequence_ids=seq,
        sentence_b_start=seq.index(1) if seq and 1 in seq else None,
    )


# --- statistics ------------------------------------------------------------------------------------


def rollout(res: AttentionResult | np.ndarray) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): `[T, T]`.

    For each layer: mean over heads, add the identity, renormalise rows; then R = Â_L · … · Â_1.
    Accepts an AttentionResult or a weights array `[L, H, T, T]`.
    """
    weights = res.weights if isinstance(res, AttentionResult) else np.asarray(res)
    mean = weights.mean(axis=1).astype(np.float64)  # [L, T, T]; mean in float32 avoids a 2x copy
    eye = np.eye(mean.shape[-1])
    result = eye
    for layer in mean:
        a_hat = layer + eye
        a_hat /= a_hat.sum(axis=-1, keepdims=True)
        result = a_hat @ result
    return result.astype(np.float32)


HEAD_STAT_COLUMNS = ["layer", "head", "prev", "next", "self", "cls", "sep", "punct", "entropy", "distance"]


def head_stats(res: AttentionResult) -> pd.DataFrame:
    """One row per (layer, head), 0-indexed, averaged over non-special query tokens.

    prev/next/self: mean attention to the previous/next/same token (queries with no such token skipped);
    cls: mean attention to the leading special token ([CLS], <s>, <|startoftext|>), NaN when the input does not
    start with one (T5 has none); sep: to the last special token when it is another one ([SEP], </s>,
    <|endoftext|>), NaN when there is none;
    punct: mean attention mass on punctuation keys; entropy: mean row entropy (nats);
    distance: mean Σ_j a_ij·|i−j|.
    """
    w = res.weights  # [L, H, T, T] float32; float64 or a per-query copy would cost 150 MB at 512 tokens
    L, H, T, _ = w.shape
    special = res.special_mask
    queries = np.flatnonzero(~special) if (~special).any() else np.arange(T)

    def over_queries(per_row: np.ndarray) -> np.ndarray:  # [L, H, T] -> [L, H], mean over query rows
        return per_row[:, :, queries].mean(axis=-1, dtype=np.float64)

    def diag_mean(offset: int) -> np.ndarray:
        valid = queries[(queries + offset >= 0) & (queries + offset < T)]
        if valid.size == 0:
            return np.full((L, H), np.nan)
        return w[:, :, valid, valid + offset].mean(axis=-1, dtype=np.float64)

    def key_mass(keys: np.ndarray) -> np.ndarray:
        if keys.size == 0:
            return np.full((L, H), np.nan)
        return over_queries(w[..., keys].sum(axis=-1))

    special_idx = np.flatnonzero(special)
    punct_idx = np.array([j for j, t in enumerate(res.tokens) if not special[j] and is_punctuation(t)], dtype=int)
    # The two full passes over [L, H, T, T] run in torch (zero-copy view, multi-threaded).
    wt = torch.from_numpy(np.ascontiguousarray(w))
    entropy = over_queries(torch.special.entr(wt).sum(-1).numpy())
    pos = torch.arange(T, dtype=wt.dtype)
    distance = over_queries((wt * (pos[:, None] - pos[None, :]).abs()).sum(-1).numpy())
    cols = {
        "layer": np.repeat(np.arange(L), H),
        "head": np.tile(np.arange(H), L),
        "prev": diag_mean(-1),
        "next": diag_mean(+1),
        "self": diag_mean(0),
        "cls": key_mass(special_idx[:1] if special[0] else special_idx[:0]),
        "sep": key_mass(special_idx[-1:] if special_idx.size and special_idx[-1] > 0 else special_idx[:0]),
        "punct": key_mass(punct_idx),
        "entropy": entropy,
        "distance": distance,
    }
    return pd.DataFrame({k: np.asarray(v).reshape(-1) for k, v in cols.items()})[HEAD_STAT_COLUMNS]


# (column, threshold, label, reason template) — first match wins, in this order.
_PATTERNS = [
    ("prev", 0.5, "previous-token head", "{:.0%} of attention goes to the previous token"),
    ("next", 0.5, "next-token head", "{:.0%} of attention goes to the next token"),
    ("self", 0.5, "self head", "{:.0%} of attention stays on the token itself"),
    ("cls", 0.5, "[CLS] sink", "{:.0%} of attention parks on the leading special token"),
    ("sep", 0.5, "[SEP] sink", "{:.0%} of attention parks on the last special token (a 'no-op')"),
    ("punct", 0.5, "punctuation head", "{:.0%} of attention goes to punctuation"),
]


def flag_heads(stats: pd.DataFrame, n_tokens: int) -> pd.DataFrame:
    """Add `pattern` and `reason` columns naming notable heads ("" when nothing stands out)."""
    pattern = np.full(len(stats), "", dtype=object)
    reason = np.full(len(stats), "", dtype=object)
    for col, threshold, name, template in _PATTERNS:
        values = stats[col].to_numpy()
        hit = (pattern == "") & np.isfinite(values) & (values >= threshold)
        pattern[hit] = name
        reason[hit] = [template.format(v) for v in values[hit]]
    if n_tokens >= 4:
        uniform = np.log(n_tokens)
        ent = stats["entropy"].to_numpy()
        hit = (pattern == "") & (ent >= 0.9 * uniform)
        pattern[hit] = "broad head"
        reason[hit] = [f"entropy {e:.2f} nats is near uniform ({uniform:.2f})" for e in ent[hit]]
    return stats.assign(pattern=pattern, reason=reason)


def token_focus(res: AttentionResult, index: int, head: int | None = None) -> np.ndarray:
    """What token `index` attends to in every layer: `[L, T]` (mean over heads, or one head)."""
    if not 0 <= index < len(res.tokens):
        raise IndexError(f"token index {index} is out of range 0..{len(res.tokens) - 1}")
    rows = res.weights[:, :, index, :]  # [L, H, T]
    return rows.mean(axis=1) if head is None else rows[:, head]


def context_split(focus: np.ndarray, index: int) -> tuple[float, float, float]:
    """(left, itself, right): the share of token `index`'s attention that goes to the tokens before it, to
    itself and to the tokens after it, mean over layers. `focus` is `token_focus(res, index)` `[L, T]` (rows sum
    to 1, so the three sum to 1)."""
    focus = np.asarray(focus, np.float64)
    per_layer = focus[:, :index].sum(axis=1), focus[:, index], focus[:, index + 1 :].sum(axis=1)  # 3 x [L]
    return tuple(float(part.mean()) if len(focus) else 0.0 for part in per_layer)


def pair_filter(res: AttentionResult, direction: str) -> np.ndarray:
    """Boolean `[T, T]` keeping cells for "A→B" (queries in A, keys in B), "B→A", or "all"."""
    T = len(res.tokens)
    if direction == "all" or res.sentence_b_start is None:
        return np.ones((T, T), bool)
    seq = np.array([-1 if s is None else s for s in res.sequence_ids])
    src, dst = (0, 1) if direction == "A→B" else (1, 0)
    return (seq[:, None] == src) & (seq[None, :] == dst)
