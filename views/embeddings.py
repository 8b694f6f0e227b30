"""Embeddings explorer: sentence and contextual token embeddings, projected with UMAP / PCA / t-SNE."""

import numpy as np
import streamlit as st

from components import resources, ui
from components.atlas import jobs
from components.embeddings import features, views, why_close

resources.start_background_warm_up()  # no-op when app.py already started it

st.title("🗺️ Embeddings")
st.caption(
    "Encoders turn text into vectors; search, RAG and classifiers run on them. See which sentences land "
    "together, and how one word moves with its context from layer to layer."
)

left, right = st.columns([2, 1])
with right:
    model_ref, revision = ui.model_picker("encoder", key="model")
    pooling = st.selectbox(
        "Pooling",
        ["auto", "mean", "cls"],
        key="pooling",
        help="auto = the model's own pooling (sentence-transformers config), else masked mean.",
    )
with left:
    corpus = views.corpus_input()
if corpus is None:
    st.stop()
for notice in corpus.notices:
    ui.user_warning(notice)
if corpus.atlas_command:
    st.caption(
        "To map every sentence, build a corpus atlas (up to 10^6 points, embedded on this machine or a Dask "
        "cluster) and open it on the Atlas page:"
        + (" save the sentences one per line as sentences.txt, then" if "sentences.txt" in corpus.atlas_command else "")
    )
    st.code(corpus.atlas_command, language="bash")
    if corpus.atlas_source is not None and jobs.available():
        jobs.section(corpus.atlas_source, model_ref, revision, pooling)

model = None
if corpus.vectors is None:
    model = ui.load_model("encoder", model_ref, revision)
    if model is None:
        st.stop()
    with ui.guard("embed these sentences") as embedding:
        X = views.embed_with_progress(model_ref, revision, corpus.texts, pooling)
    if embedding.failed:
        st.stop()
else:
    X = corpus.vectors

N = len(X)
unique = len(set(corpus.texts)) if corpus.vectors is None else len(np.unique(X, axis=0))
if unique == 1 and N > 1:
    ui.user_warning("Every sentence is the same, so every point lands in the same place.")
st.caption(f"{N:,} vectors of dimension {X.shape[1]}" + (f" from {ui.escape_markdown(model.name)}" if model else " (uploaded)"))

# One view at a time: Streamlit runs every tab's body on each run, so tabs would compute the word's layers, the
# anisotropy baseline and the explanation on every open, for nobody. Each entry: label -> its section.
SECTIONS = {
    "Sentences": lambda: views.sentences(model, model_ref, revision, corpus, X, pooling),
    "One word in context": lambda: views.word_in_context(model_ref, revision, corpus, views.projection_params()),
    "Why are these close?": lambda: why_close.section(model_ref, revision, corpus.texts, X, pooling),
    "Features": lambda: features.section(corpus.texts, X),  # works on uploaded vectors too
}
view = ui.view_picker(list(SECTIONS), key="emb_view")
if view in views.NEEDS_MODEL and model is None:
    st.info(views.NEEDS_MODEL.get(view, "This view needs the model: pick a corpus of sentences, not vectors."))
else:
    SECTIONS[view]()
