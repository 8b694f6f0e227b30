"""Attribution results as tables for CSV downloads (text cells made spreadsheet-safe). No torch.

`csv_bytes(frame)` quotes cells a spreadsheet would run as formulas (`tabular.spreadsheet_safe`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..tabular import spreadsheet_safe


def token_scores(texts: Sequence[tuple[str, Sequence[str], np.ndarray]], special: Sequence[np.ndarray] | None = None):
    """One row per token: text (the label), position, token (the tokenizer's own), special, score."""
    rows = []
    for n, (label, tokens, scores) in enumerate(texts):
        marks = special[n] if special is not None else np.zeros(len(tokens), bool)
        for i, (token, score) in enumerate(zip(tokens, scores, strict=True)):
            rows.append({"text": label, "position": i, "token": token, "special": bool(marks[i]), "score": float(score)})
    return pd.DataFrame(rows, columns=["text", "position", "token", "special", "score"])


def lens_table(tokens: Sequence[str], top_tokens: list, top_probs: np.ndarray) -> pd.DataFrame:
    """The logit lens, long form: layer, position, input_token, rank (1 = top), token, prob."""
    L1, T, k = top_probs.shape
    rows = [
        {
            "layer": layer,
            "position": t,
            "input_token": tokens[t],
            "rank": j + 1,
            "token": top_tokens[layer][t][j],
            "prob": float(top_probs[layer, t, j]),
        }
        for layer in range(L1)
        for t in range(T)
        for j in range(k)
    ]
    return pd.DataFrame(rows, columns=["layer", "position", "input_token", "rank", "token", "prob"])


def query_key_scores(qk, i: int, labels: Sequence[str]) -> pd.DataFrame:
    """Query `i`'s row of a `QueryKey`, one row per key j: key (its label), q·k·scale (Σ_d of `qk.products(i)`,
    before the bias), bias (0 where the model adds none; −∞ where masked), score (`qk.scores()[i]`, the number
    the model soft-maxes) and weight (`qk.weights[i]`, the model's attention)."""
    score = np.asarray(qk.scores()[i], np.float32)  # [T]
    bias = np.asarray(qk.bias[i], np.float32) if qk.bias is not None else np.zeros_like(score)
    return pd.DataFrame({
        "key": list(labels),
        "q·k·scale": np.asarray(qk.products(i), np.float32).sum(axis=1),
        "bias": bias,
        "score": score,
        "weight": np.asarray(qk.weights[i], np.float32),
    })


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with every text cell passed through `spreadsheet_safe` (formula injection)."""
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(spreadsheet_safe)
    return safe.to_csv(index=False).encode("utf-8")
