"""Corpus atlas: a whole corpus (up to 10^6 sentences) on one WebGL map; search it, select regions, export."""

import streamlit as st

from components import atlas_views

st.title("🌌 Corpus atlas")
st.caption(
    "Map a corpus built with `python -m encoderscope atlas build`: which topics cluster, which near-duplicates "
    "crowd a RAG index, where a query lands."
)

opened = atlas_views.choose()
if opened is None:
    st.stop()
atlas_views.summary(opened)
hits = atlas_views.search(opened)
result, shape = atlas_views.atlas_view(opened, hits)
if hits is not None:
    atlas_views.show_hits(hits)
atlas_views.clicked_point(opened, result)
atlas_views.selection_table(opened, shape)
