"""The Compare page's search: the top-k under each model side by side, rank changes marked, and "why" for a hit
under each model (`es.explain_similarity`, the shared view in components/why.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components import ui, why
from components.compare import cache
from components.compare.cache import Side
from encoderscope.embeddings import nearest


def ranks(query: np.ndarray, X: np.ndarray) -> np.ndarray:
    """1-based rank `[N]` of every text for the query under one model (cosine; `X` `[N, D]` normalised)."""
    order = np.argsort(-(X @ query), kind="stable")
    out = np.empty(len(X), int)
    out[order] = np.arange(1, len(X) + 1)
    return out


def change(rank_here: int, rank_there: int, k: int) -> str:
    """How a hit moved from the other model's ranking to this one's: "new" (outside the other's top-k),
    "=" or "↑3" / "↓2"."""
    if rank_there > k:
        return f"new (was #{rank_there})"
    if rank_there == rank_here:
        return "="
    return f"↑{rank_there - rank_here}" if rank_there > rank_here else f"↓{rank_here - rank_there}"


def hits(side: Side, other: Side, texts: tuple[str, ...], query: str, k: int) -> pd.DataFrame:
    """This side's top-k for the query, with each hit's rank under the other side and the change."""
    X, Y = cache.sentence_vectors(side, texts, False), cache.sentence_vectors(other, texts, False)
    q, p = cache.query_vector(side, query), cache.query_vector(other, query)
    idx, scores = nearest(q, X, k)
    there = ranks(p, Y)
    return pd.DataFrame({
        "rank": np.arange(1, len(idx) + 1), "cosine": np.round(scores, 4),
        "change": [change(r + 1, int(there[i]), k) for r, i in enumerate(idx)],
        "text": [texts[i] for i in idx], "id": idx,
    })


def section(a: Side, b: Side, names: tuple[str, str], texts: tuple[str, ...]) -> None:
    """Query box (`?q=` in the URL), both top-k tables, overlap@k, and "why" for a chosen hit."""
    st.session_state.setdefault("q", ui.query_str("q", "", ui.URL_TEXT_LIMIT))
    c1, c2 = st.columns([4, 1])
    query = c1.text_input("Search both models: type a query", key="q", max_chars=1000,
                          placeholder="e.g. How do I bake bread?")
    k = int(c2.number_input("top-k", 1, min(50, len(texts)), min(5, len(texts)), key="search_k"))
    query, notices = ui.clean_text(query.strip(), max_chars=1000)
    for notice in notices:
        ui.user_warning(notice)
    ui.share_texts(q=query)
    if not query:
        st.info("Type a query to see what each model retrieves from the corpus.")
        return
    tables = []
    for column, side, other, name in zip(st.columns(2), (a, b), (b, a), names, strict=True):
        with column, ui.guard(f"search with {name}") as run, st.spinner(f"Searching with {ui.escape_markdown(name)} …"):
            table = hits(side, other, texts, query, k)
            st.markdown(f"**{ui.escape_markdown(name)}**")
            st.dataframe(table.drop(columns="id"), hide_index=True, width="stretch")
        tables.append(None if run.failed else table)
    if any(t is None for t in tables):
        return
    shared = len(set(tables[0]["id"]) & set(tables[1]["id"]))
    st.caption(f"overlap@{k}: {shared} of {k} hits are in both lists ({shared / k:.0%}). \"change\": where the hit "
               "ranks under the other model (↑ it ranks higher here, \"new\": outside the other model's top-k).")
    why_hit(a, b, names, texts, query, tables)


def why_hit(a: Side, b: Side, names: tuple[str, str], texts: tuple[str, ...], query: str,
            tables: list[pd.DataFrame]) -> None:
    """Pick a hit (from either list); explain query · hit under each model, side by side, on request."""
    ids = list(dict.fromkeys([*tables[0]["id"], *tables[1]["id"]]))
    pick = st.selectbox("Why? Explain the query and this hit under each model", ids, key="why_hit",
                        format_func=lambda i: texts[i][:90])
    if not st.toggle("Explain", key="why_on", help="Runs an attribution under each model (a few seconds)."):
        return
    for column, side, name, tag in zip(st.columns(2), (a, b), names, "ab", strict=True):
        with column:
            st.markdown(f"**{ui.escape_markdown(name)}**")
            if side.kind != "encoder":
                st.info("The token-by-token explanation needs a bidirectional encoder; this side is a decoder.")
                continue
            why.explain_view(side.ref, side.revision, query, texts[int(pick)], key=f"why_{tag}",
                             method="auto", steps=32)
