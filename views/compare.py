"""Compare models: two encoders, or an encoder and a decoder, on the same texts: layer × layer similarity, the
neighbourhoods each model gives the texts, and search under each."""

import streamlit as st

from components.compare import search, views

st.title("⚖️ Compare models")
st.caption(
    "Which embedding model should your search use, and which of your texts does the choice move? Two models read "
    "the same texts; every layer of one is compared with every layer of the other, and each text's nearest "
    "neighbours under one with those under the other."
)

left, right = st.columns(2)
with left:
    picked_a = views.picker("a", "Model a")
with right:
    picked_b = views.picker("b", "Model b")
corpus = views.corpus()
if corpus is None or picked_a is None or picked_b is None:
    st.stop()
texts = tuple(corpus[0])
(side_a, name_a), (side_b, name_b) = picked_a, picked_b
ok_a = views.ready(side_a, name_a, texts)
ok_b = views.ready(side_b, name_b, texts)
if not (ok_a or ok_b):
    st.stop()
if not (ok_a and ok_b):  # one side failed (its error is shown): the other still gets its self-similarity map
    side, name = (side_a, name_a) if ok_a else (side_b, name_b)
    st.subheader(f"{name} against itself")
    metric, k, _ = views.metric_controls(len(texts))
    views.layer_map(side, side, (name, name), texts, metric, k, untrained=False)
    st.stop()

names = (name_a, name_b)
tab_layers, tab_maps, tab_search = st.tabs(["Layer × layer", "Neighbourhoods", "Search"])
with tab_layers:
    metric, k, untrained = views.metric_controls(len(texts))
    views.layer_map(side_a, side_b, names, texts, metric, k, untrained)
with tab_maps:
    views.pair_maps(side_a, side_b, names, texts, k)
with tab_search:
    search.section(side_a, side_b, names, texts)
