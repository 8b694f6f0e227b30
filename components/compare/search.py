"""The Compare page's search: the top-k under each model side by side, rank changes marked, and "why" for a hit
under each model (`es.explain_similarity`, the shared view in components/why.py)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import ui, why
from components.compare import cache
from components.compare.cache import Side


def change(rank_here: int, rank_there: int, k: int) -> str:
    """How a hit ranks under the other model: "=" (same rank), "↑3" (3 places higher here), "↓2", or
    "new (#17)" when the other model ranks it outside its top-k."""
    if rank_there > k:
        return f"new (#{rank_there})"
    if rank_there == rank_here:
        return "="
    return f"↑{rank_there - rank_here}" if rank_there > rank_here else f"↓{rank_here - rank_there}"


def hits_table(res, side: int, texts: tuple[str, ...]) -> pd.DataFrame:
    """One side's top-k (0: a, 1: b) of query 0 of an `es.compare.Retrieval`, with the rank change."""
    top, scores, other = ((res.top_a, res.scores_a, res.rank_in_b) if side == 0
                          else (res.top_b, res.scores_b, res.rank_in_a))
    return pd.DataFrame({
        "rank": range(1, res.k + 1), "cosine": [round(float(s), 4) for s in scores[0]],
        "change": [change(r + 1, int(o), res.k) for r, o in enumerate(other[0])],
        "text": [texts[int(i)] for i in top[0]], "id": [int(i) for i in top[0]],
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
    with ui.guard("search with both models") as run, st.spinner("Searching with both models …"):
        res = cache.retrieval(a, b, texts, query, k)
    if run.failed:
        return
    for note in res.notes:
        ui.user_warning(note)
    tables = [hits_table(res, side, texts) for side in (0, 1)]
    for column, name, table in zip(st.columns(2), names, tables, strict=True):
        column.markdown(f"**{ui.escape_markdown(name)}**")
        column.dataframe(table.drop(columns="id"), hide_index=True, width="stretch")
    shared = round(float(res.overlap[0]) * k)
    st.caption(f"overlap@{k}: {shared} of {k} hits are in both lists ({res.overlap[0]:.0%}). \"change\": where the "
               "hit ranks under the other model (↑ it ranks higher here; \"new\": outside the other model's top-k).")
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
