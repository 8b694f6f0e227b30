"""Choose the head worth opening on: the one where a query word attends most to some key words.

Words are matched on whole words, case-insensitively: word-pieces are merged first exactly as the page's
"merge word-pieces" option does (query pieces averaged, key pieces summed), so "fishing" is found even when the
tokenizer splits it into "fish", "##ing".
"""

from __future__ import annotations

import numpy as np

from .attention_maps import AttentionResult, merge_word_pieces
from .tokens import clean_token


def _word(token: str) -> str:
    return clean_token(token).strip().removeprefix("##").lower()


def word_attention(res: AttentionResult, query: str, keys: list[str]) -> np.ndarray | None:
    """Attention from `query` to `keys` in every head: `[L, H]`, or None when the query or every key is missing.

    Per head: the weight each occurrence of the query word gives to all occurrences of the key words together
    (summed over keys), averaged over the query's occurrences. Keys missing from the text add nothing.
    """
    merged = merge_word_pieces(res)
    words = [_word(t) for t in merged.tokens]
    rows = [i for i, w in enumerate(words) if w == query.lower()]
    wanted = {k.lower() for k in keys}
    cols = [j for j, w in enumerate(words) if w in wanted]
    if not rows or not cols:
        return None
    w = merged.weights[:, :, rows][:, :, :, cols]  # [L, H, len(rows), len(cols)]
    return w.sum(axis=-1).mean(axis=-1)


def pick_head(res: AttentionResult, query: str, keys: list[str]) -> tuple[int, int]:
    """(layer, head) where `query` attends most to `keys` (see `word_attention`); the first such head on a tie.

    Falls back to (0, 0) when the query or every key word is missing from the text."""
    scores = word_attention(res, query, keys)
    return (0, 0) if scores is None else best_head(scores)


def best_head(scores: np.ndarray) -> tuple[int, int]:
    """(layer, head) of the largest value of `scores` `[L, H]`; the first one on a tie."""
    layer, head = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return int(layer), int(head)
