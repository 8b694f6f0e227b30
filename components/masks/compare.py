"""The Masks page's measured contrast: a CKA map between the encoder's layers and the decoder's on the same texts.

The seed's contrast (bidirectional encoder vs causal decoder), so far shown as masks and pictures, as a number per
layer pair. It reuses the Compare page's pieces: its cache section (each model runs once per text set, through the
compute pool) and its layer map (the canvas heatmap, exact hover, caption, CSV). Nothing runs until asked.
"""

from __future__ import annotations

import streamlit as st

from components.compare import views as compare_views
from components.compare.cache import Side
from encoderscope import corpora, models


def section(enc_ref: str | None, enc_rev: str | None, dec_ref: str | None, dec_rev: str | None) -> None:
    """Corpus and metric pickers, a "Measure" switch (`?measure=1`), then the encoder × decoder layer map."""
    c1, c2, c3 = st.columns([3, 2, 1])
    names = list(corpora.CORPORA)
    corpus = c1.selectbox("Texts", names, key="measure_corpus", help="An example corpus; both models read the "
                          "same texts, each pooled its own way (masked mean over tokens for both).")
    metric = compare_views.metric_picker(c2, "measure_metric")
    if not compare_views.measure_switch(
        c3, "measure", "measure", "Runs both models over the texts (once; then cached).",
        "Switch on “Measure” to run the encoder and the decoder over the same texts and compare every layer of one "
        "with every layer of the other.",
    ):
        return
    texts = tuple(text for text, _ in corpora.CORPORA[corpus])
    enc, dec = Side("encoder", enc_ref, enc_rev), Side("decoder", dec_ref, dec_rev)
    enc_name, dec_name = enc_ref or models.BUNDLED_ENCODER, dec_ref or models.BUNDLED_DECODER
    if not (compare_views.ready(enc, enc_name, texts) and compare_views.ready(dec, dec_name, texts)):
        return
    compare_views.layer_map(enc, dec, (enc_name, dec_name), texts, metric, 10, untrained=False, key="masks_cka")
    st.caption("Rows: the encoder's layers; columns: the decoder's. Each text's vector at a layer is the masked "
               "mean of that layer's token states, for both models; in the decoder each of those states has seen "
               "only the tokens to its left. A low value in the last row and column: the two models end up "
               "organising the same texts differently.")
