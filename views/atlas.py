"""Corpus atlas: a whole corpus (up to 10^6 sentences) on one WebGL map; search it, select regions, export."""

import streamlit as st

from components.atlas import compare as atlas_compare
from components.atlas import features, views

st.title("🌌 Corpus atlas")
st.caption(
    "Map a corpus built with `python -m encoderscope atlas build`: which topics cluster, which near-duplicates "
    "crowd a RAG index, where a query lands."
)

opened = views.choose()
if opened is None:
    st.stop()
views.summary(opened)
hits = views.search(opened)
feature = features.panel(opened)
result, shape = views.atlas_view(opened, hits, feature)
picked = views.show_hits(hits) if hits is not None else None
views.clicked_point(opened, result)
features.point_features(opened, result)
views.why_hit(opened, hits, result, picked)
features.why_hit(opened, hits, result, picked)
views.selection_table(opened, shape)
atlas_compare.section(opened)  # when `atlas compare` results exist: overlap colours, b's map beside
