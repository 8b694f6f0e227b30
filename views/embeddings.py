"""Embeddings explorer: sentence and contextual token embeddings, projected with UMAP / PCA / t-SNE."""

import numpy as np
import streamlit as st

from components import resources, ui
from components.atlas import jobs
from components.embeddings import features, views, why_close
from encoderscope import clustering, figures, projection, settings

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

tab_sent, tab_word, tab_why, tab_features = st.tabs(["Sentences", "One word in context", "Why are these close?", "Features"])
with tab_sent:
    params = views.projection_controls(N)
    cap = settings.get().max_projection_points
    sample = projection.sample_indices(N, cap, params["seed"])
    texts, labels, Xp = corpus.texts, corpus.labels, X
    if sample is not None:
        ui.user_warning(
            f"{N:,} points exceed the projection cap of {cap:,}: showing a random sample of {cap:,} "
            "(nearest-neighbour search still uses all of them)."
        )
        texts, labels, Xp = [texts[i] for i in sample], [labels[i] for i in sample], X[sample]
    try:
        proj = views.project(Xp, params)
    except ValueError as err:
        ui.user_error(f"Projection failed: {err}")
        st.stop()
    for notice in proj.notices:
        ui.user_warning(notice)
    clusters = None
    if params["colour"] != "label" and len(Xp) > 1:
        clusters = views.kmeans(Xp, params["k"], params["seed"])
    q1, q2 = st.columns([4, 1])
    query = q1.text_input(
        "Nearest-neighbour search: type a query",
        "",
        key="query",
        max_chars=1000,
        placeholder="e.g. How do I bake bread?",
        disabled=model is None,
    )
    k = int(q2.number_input("top-k", 1, 50, 5, key="top_k"))
    query_vec = None
    if query.strip() and model is not None:
        query_vec = resources.embed_block(model_ref, revision, (ui.clean_text(query)[0],), pooling)[0]
    highlight, query_xy = {}, None
    if query_vec is not None:
        st.markdown("**Nearest neighbours** (cosine similarity: the retrieval step of RAG)")
        found = views.neighbours(X, corpus.texts, query_vec, k)
        # Highlight neighbours that are in the (possibly sampled) projection; place the query at their centroid.
        highlight = clustering.to_sample(found, sample)
        query_xy = clustering.centroid(proj.coords, highlight)
    colour = clusters if clusters is not None else labels
    axis = "PC" if proj.method == "pca" else projection.NAMES[proj.method] + " "
    ui.plotly(
        figures.projection_scatter(
            proj.coords,
            texts,
            colour,
            highlight=highlight,
            query=query_xy,
            axis_titles=tuple(f"{axis}{i + 1}" for i in range(params["dim"])),
        ),
        key="scatter",
        filename="embeddings",
    )
    st.caption(
        "Each point is one sentence; nearby points have similar embeddings. Hover for the text. "
        + ("The query (star) is drawn at the centroid of its neighbours (rings)." if query_xy is not None else "")
    )
    if proj.explained_variance is not None and proj.explained_variance.sum() == 0:
        st.caption("All points coincide: there is no variance to explain.")
    elif proj.explained_variance is not None:
        ui.plotly(figures.explained_variance_chart(proj.explained_variance), key="variance", filename="pca_variance")
        st.caption(f"PCA keeps {proj.explained_variance.sum():.1%} of the variance in {params['dim']} components.")
    views.exports(proj.coords, texts, labels, clusters, X)

with tab_word:
    if model is None:
        st.info("Token embeddings need a model: pick a corpus of sentences instead of precomputed vectors.")
    else:
        views.word_in_context(model_ref, revision, corpus, params)

with tab_why:
    if model is None:
        st.info("Explanations need the model: pick a corpus of sentences instead of precomputed vectors.")
    else:
        why_close.section(model_ref, revision, corpus.texts, X, pooling)

with tab_features:
    features.section(corpus.texts, X)
