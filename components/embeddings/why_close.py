"""The Embeddings page's "Why are these close?" tab: a sentence and one of its neighbours, or two typed texts,
explained by the shared view in `components/why.py`, plainly or centred on the corpus's mean vector ("what is
specific to this pair")."""

from __future__ import annotations

import numpy as np
import streamlit as st

from components import ui, why
from encoderscope.embeddings import nearest

PICK, TYPE = "A sentence and one of its neighbours", "Two texts of my own"
DEFAULT_A = "A man is playing a guitar on stage."
DEFAULT_B = "Someone performs music with an instrument."
NEIGHBOURS = 5
PLAIN, SPECIFIC = "Plain cosine", "What is specific to this pair"
ANISOTROPY = (
    "Why the plain view is mostly red: sentence vectors of one model share a common direction (anisotropy), so "
    "part of every cosine, even between unrelated sentences, comes from that shared direction, and mean pooling "
    "spreads it over every token. “What is specific to this pair” subtracts this corpus's mean vector from both "
    "sentence vectors first and explains the cosine that is left (exact, the same decomposition)."
)


def _short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def pick_pair(texts: list[str], X: np.ndarray) -> tuple[str, str] | None:
    """A corpus sentence and one of its nearest neighbours (by the page's own vectors). None: nothing to pick."""
    if len(texts) < 2:
        st.info("The corpus has one sentence: type two texts instead.")
        return None
    left, right = st.columns(2)
    i = int(left.selectbox("Sentence", range(len(texts)), format_func=lambda j: _short(texts[j]), key="why_sentence"))
    idx, scores = nearest(X[i], X, NEIGHBOURS + 1)
    options = [(int(j), float(s)) for j, s in zip(idx, scores, strict=True) if int(j) != i][:NEIGHBOURS]
    j, _ = right.selectbox(
        "One of its nearest neighbours",
        options,
        format_func=lambda o: f"{o[1]:.3f} · {_short(texts[o[0]], 70)}",
        key="why_neighbour",
    )
    return texts[i], texts[j]


def section(model_ref: str | None, revision: str | None, texts: list[str], X: np.ndarray, pooling: str) -> None:
    """Choose the two texts, then draw the explanation."""
    mode = st.radio("Explain", [PICK, TYPE], horizontal=True, key="why_mode")
    if mode == PICK:
        pair = pick_pair(texts, X)
    else:
        left, right = st.columns(2)
        pair = (
            left.text_area("Text A", DEFAULT_A, key="why_a", max_chars=2000, height=90),
            right.text_area("Text B", DEFAULT_B, key="why_b", max_chars=2000, height=90),
        )
    if pair is None:
        return
    if not ui.clean_text(pair[0])[0].strip() or not ui.clean_text(pair[1])[0].strip():
        st.info("Type two texts to compare.")
        return
    view = st.radio("View", [PLAIN, SPECIFIC], horizontal=True, key="why_view", help=ANISOTROPY)
    st.caption(ANISOTROPY)
    centre = None
    if pooling != "auto":
        st.caption(
            f"The explanation uses the model's own pooling; the map above uses {ui.escape_markdown(pooling)} pooling, "
            "so its cosines can differ."
            + (" The centred view needs the corpus's vectors in the model's own pooling: set Pooling to auto."
               if view == SPECIFIC else "")
        )
    elif view == SPECIFIC:
        centre = corpus_centre(X)
    why.explain_view(model_ref, revision, pair[0], pair[1], key="emb_why", centre=centre)


def corpus_centre(X: np.ndarray) -> np.ndarray:
    """The mean of the corpus's unit sentence vectors `[D]` (float64), the centre of the specific view."""
    return np.asarray(X, np.float64).mean(axis=0)
