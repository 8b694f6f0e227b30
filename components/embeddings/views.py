"""Sections of the embeddings explorer: corpus input, embedding with progress, projection, neighbours."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import streamlit as st

from components import resources, ui
from components.atlas import jobs
from encoderscope import clustering, corpora, figures, projection, settings, tabular
from encoderscope.embeddings import MAX_OCCURRENCES, nearest, self_similarity
from encoderscope.errors import UserFacingError

SOURCES = ["Example corpus", "Your sentences", "CSV upload", "Precomputed embeddings"]
DEFAULT_SENTENCES = "\n".join(t for t, _ in corpora.TOPICS[:12])
# the projection's widgets (key -> default): the word view reuses their values while they are hidden
PROJECTION_DEFAULTS = dict(method="umap", dim=2, colour="label", k=5, seed=0, n_neighbors=15, min_dist=0.1,
                           perplexity=30.0)
NEEDS_MODEL = {  # what a view that needs the model says next to precomputed vectors
    "One word in context": "Token embeddings need a model: pick a corpus of sentences instead of precomputed vectors.",
    "Why are these close?": "Explanations need the model: pick a corpus of sentences instead of precomputed vectors.",
}


@dataclass
class Corpus:
    """What the page embeds: texts with labels, or precomputed vectors `[N, D]` with their metadata."""

    texts: list[str]
    labels: list[str]
    vectors: np.ndarray | None = None
    notices: list[str] = field(default_factory=list)
    atlas_command: str | None = None  # set when the corpus was cut at the cap: how to map all of it
    atlas_source: jobs.Source | None = None  # with it: the whole corpus, for a background atlas build


def atlas_command(corpus_file: str, text_column: str = "text", label_column: str | None = None) -> str:
    """The `atlas build` command line for a corpus above this page's cap (the Atlas page maps up to 10^6
    points). --out names a folder in the atlas folder the Atlas page lists, except in public mode (no paths)."""
    import shlex
    from pathlib import Path

    conf = settings.get()
    stem = Path(corpus_file).stem or "corpus"
    out = str(Path(conf.atlas_dir) / stem) if conf.atlas_dir and conf.allow_local_paths else f"atlases/{stem}"
    parts = ["python", "-m", "encoderscope", "atlas", "build", corpus_file, "--text-column", text_column]
    if label_column:
        parts += ["--label-column", label_column]
    return shlex.join([*parts, "--out", out])


def _limit(
    texts: list[str], labels: list[str], notices: list[str], command: str | None = None,
    source: jobs.Source | None = None,
) -> Corpus:
    cap = settings.get().max_sentences
    if len(texts) > cap:
        notices.append(f"{len(texts):,} sentences exceed the limit of {cap:,}; the first {cap:,} are used.")
        return Corpus(texts[:cap], labels[:cap], None, notices, atlas_command=command, atlas_source=source)
    return Corpus(texts, labels, None, notices)


def corpus_input() -> Corpus | None:
    """Widgets for the four sources; returns None (after a message) when there is nothing usable yet."""
    source = st.radio("Corpus", SOURCES, horizontal=True, key="source")
    if source == "Example corpus":
        name = st.selectbox("Example", list(corpora.CORPORA), key="example")
        texts, labels = map(list, zip(*corpora.CORPORA[name], strict=True))
        return Corpus(texts, labels)
    if source == "Your sentences":
        raw = st.text_area("Sentences (one per line)", DEFAULT_SENTENCES, height=180, key="sentences")
        text, notices = ui.clean_text(raw, max_chars=settings.get().max_csv_bytes)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            st.info("Type one sentence per line.")
            return None
        return _limit(lines, ["(typed)"] * len(lines), notices, atlas_command("sentences.txt"),
                      jobs.Source("sentences.txt", lines))
    if source == "CSV upload":
        return _csv_input()
    return _vectors_input()


def _csv_input() -> Corpus | None:
    upload = ui.file_uploader(
        "CSV or TSV file",
        type=["csv", "tsv", "txt"],
        key="csv_upload",
        help="UTF-8 (BOM ok) or Latin-1; comma, semicolon or tab separated.",
    )
    if upload is None:
        st.info("Upload a CSV file with a text column (and optionally a label column).")
        return None
    with ui.guard("read the file") as reading:
        table = tabular.read_csv(upload.getvalue())
    if reading.failed:
        return None
    columns = list(table.frame.columns)
    guess = next((c for c in columns if c.lower() in ("text", "sentence", "sentences")), columns[0])
    c1, c2 = st.columns(2)
    text_col = c1.selectbox("Text column", columns, index=columns.index(guess), key="text_col")
    label_options = ["(none)"] + [c for c in columns if c != text_col]
    label_col = c2.selectbox("Label column (optional)", label_options, key="label_col")
    with ui.guard("read the columns") as reading:
        texts, labels = tabular.texts_and_labels(table.frame, text_col, None if label_col == "(none)" else label_col)
    if reading.failed:
        return None
    label = None if label_col == "(none)" else label_col
    dropped = tabular.corpus_rows(table.frame, text_col)[1]  # rows with an empty text: say how many, never silently
    return _limit(texts, labels, table.notices + dropped, atlas_command(upload.name, text_col, label),
                  jobs.Source(upload.name, texts, labels if label else None, data=upload.getvalue(),
                              text_column=text_col, label_column=label))


def _vectors_input() -> Corpus | None:
    c1, c2 = st.columns(2)
    with c1:
        vec = ui.file_uploader("Vectors: .npy [N, D] or TSV of numbers", type=["npy", "tsv", "csv", "txt"],
                               key="vec_upload")
    with c2:
        meta = ui.file_uploader("Metadata (optional): CSV/TSV with text and label columns",
                                type=["csv", "tsv", "txt"], key="meta_upload")
    if vec is None:
        st.info("Upload an embeddings array, e.g. from `python -m encoderscope embed` or the Embedding Projector.")
        return None
    with ui.guard("read the files") as reading:
        vectors = tabular.read_vectors(vec.getvalue(), vec.name)
        if meta is not None:
            texts, labels, notices = tabular.read_metadata(meta.getvalue(), len(vectors))
        else:
            texts, labels, notices = [f"#{i}" for i in range(len(vectors))], ["(no label)"] * len(vectors), []
    if reading.failed:
        return None
    return Corpus(texts, labels, vectors, notices)


def embed_with_progress(model_ref, revision, texts: list[str], pooling: str) -> np.ndarray:
    """Embeddings `[N, D]` block by block (each block cached), with a progress bar above 100 sentences."""
    block = resources.EMBED_BLOCK
    chunks = [tuple(texts[i : i + block]) for i in range(0, len(texts), block)]
    bar = st.progress(0.0, text=f"Embedding {len(texts):,} sentences …") if len(texts) > 100 else None
    parts = []
    lane = "long" if len(texts) > resources.LONG_EMBED else "short"  # a large corpus cannot take every worker
    for k, chunk in enumerate(chunks):
        parts.append(resources.embed_block(model_ref, revision, chunk, pooling, _lane=lane))
        if bar:
            bar.progress((k + 1) / len(chunks), text=f"Embedded {min((k + 1) * block, len(texts)):,} / {len(texts):,}")
    if bar:
        bar.empty()
    return np.concatenate(parts)


def projection_controls(n_points: int) -> dict:
    """The projection's widgets (their values survive while another view is shown). Returns `projection_params()`."""
    keep = dict(persist_state="page")
    c1, c2, c3, c4 = st.columns(4)
    c1.selectbox("Projection", ["umap", "pca", "tsne"], format_func=str.upper, key="method", **keep)
    c2.radio("Dimensions", [2, 3], horizontal=True, key="dim", format_func=lambda d: f"{d}-D", **keep)
    colour = c3.selectbox("Colour by", ["label", "k-means cluster"], key="colour", **keep)
    c4.number_input("k (clusters)", 2, 50, 5, key="k", disabled=colour == "label", **keep)
    with st.expander("Projection parameters"):
        p1, p2, p3, p4 = st.columns(4)
        p1.number_input("UMAP n_neighbors", 2, 200, 15, key="n_neighbors", **keep)
        p2.number_input("UMAP min_dist", 0.0, 0.99, 0.1, step=0.05, key="min_dist", **keep)
        p3.number_input("t-SNE perplexity", 2.0, 100.0, 30.0, key="perplexity", **keep)
        p4.number_input("Seed", 0, 2**31 - 1, 0, key="seed", **keep)
        st.caption("UMAP uses the cosine metric. The same seed gives the same picture.")
    return projection_params()


def projection_params() -> dict:
    """The projection settings as last set in the Sentences view (defaults before): method, dim, colour, k, seed,
    n_neighbors, min_dist, perplexity."""
    params = {key: st.session_state.get(key, default) for key, default in PROJECTION_DEFAULTS.items()}
    for key in ("k", "seed", "n_neighbors"):
        params[key] = int(params[key])
    for key in ("min_dist", "perplexity"):
        params[key] = float(params[key])
    return params


def sentences(model, model_ref, revision, corpus: Corpus, X: np.ndarray, pooling: str) -> None:
    """The Sentences view: the corpus `X` `[N, D]` projected (a random sample above the cap), coloured by label or
    k-means cluster, with nearest-neighbour search for a typed query (needs `model`) and the exports."""
    N = len(X)
    params = projection_controls(N)
    cap = settings.get().max_projection_points
    sample = projection.sample_indices(N, cap, params["seed"])
    texts, labels, Xp = corpus.texts, corpus.labels, X
    if sample is not None:
        ui.user_warning(
            f"{N:,} points exceed the projection cap of {cap:,}: showing a random sample of {cap:,} "
            "(nearest-neighbour search still uses all of them)."
        )
        texts, labels, Xp = [texts[i] for i in sample], [labels[i] for i in sample], X[sample]
    with ui.guard("project the points") as projecting:
        proj = project(Xp, params)
    if projecting.failed:
        return
    for notice in proj.notices:
        ui.user_warning(notice)
    clusters = None
    if params["colour"] != "label" and len(Xp) > 1:
        with ui.guard("cluster the points"):  # on failure the map keeps the label colours
            clusters = kmeans(Xp, params["k"], params["seed"])
    q1, q2 = st.columns([4, 1])
    query = q1.text_input(
        "Nearest-neighbour search: type a query", "", key="query", max_chars=1000,
        placeholder="e.g. How do I bake bread?", disabled=model is None, persist_state="page",
    )
    k = int(q2.number_input("top-k", 1, 50, 5, key="top_k", persist_state="page"))
    query_vec = None
    if query.strip() and model is not None:
        with ui.guard("embed the query"):  # on failure the map is drawn without the neighbours
            query_vec = resources.embed_block(model_ref, revision, (ui.clean_text(query)[0],), pooling)[0]
    highlight, query_xy = {}, None
    if query_vec is not None:
        st.markdown("**Nearest neighbours** (cosine similarity: the retrieval step of RAG)")
        found = neighbours(X, corpus.texts, query_vec, k)
        # Highlight neighbours that are in the (possibly sampled) projection; place the query at their centroid.
        highlight = clustering.to_sample(found, sample)
        query_xy = clustering.centroid(proj.coords, highlight)
    axis = "PC" if proj.method == "pca" else projection.NAMES[proj.method] + " "
    ui.plotly(
        figures.projection_scatter(
            proj.coords, texts, clusters if clusters is not None else labels, highlight=highlight, query=query_xy,
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
    exports(proj.coords, texts, labels, clusters, X)


def wait_for_umap(n_points: int) -> None:
    resources.start_background_warm_up()
    done = projection.ready_event(n_points)
    if not done.is_set():
        with st.spinner("Compiling UMAP (numba, first use after a server start only) …"):
            done.wait()


def project(X: np.ndarray, params: dict):
    if params["method"] == "umap":
        wait_for_umap(len(X))
    with st.spinner(f"Projecting {len(X):,} points with {projection.NAMES[params['method']]} …"):
        return resources.projection(
            X,
            params["method"],
            params["dim"],
            params["seed"],
            params["n_neighbors"],
            params["min_dist"],
            params["perplexity"],
        )


def kmeans(X: np.ndarray, k: int, seed: int) -> list[str]:
    """Cluster names `[N]` ("cluster 0" …) from k-means on `X` `[N, D]` (cached; k is capped at N)."""
    with st.spinner(f"Clustering {len(X):,} points …"):
        return resources.kmeans_labels(X, k, seed)


def exports(coords: np.ndarray, texts: list[str], labels: list[str], clusters: list[str] | None, X: np.ndarray) -> None:
    frame = pd.DataFrame(coords, columns=[f"dim{i + 1}" for i in range(coords.shape[1])])
    frame["text"], frame["label"] = texts, labels
    if clusters is not None:
        frame["cluster"] = clusters
    for col in ("text", "label"):
        frame[col] = frame[col].map(tabular.spreadsheet_safe)
    c1, c2 = st.columns(2)
    c1.download_button("⬇️ Projected points (.csv)", lambda: frame.to_csv(index=False).encode(), "projection.csv", "text/csv")
    c2.download_button(
        "⬇️ Embeddings (.npy)",
        ui.npy_bytes(X.astype(np.float32, copy=False)),
        "embeddings.npy",
        "application/octet-stream",
        help=f"float32 [N, D] = {list(X.shape)}",
    )


def neighbours(X: np.ndarray, texts: list[str], query_vec: np.ndarray | None, k: int):
    """Top-k table for the query; returns ({index: note}, query coordinates are handled by the caller)."""
    if query_vec is None:
        return {}
    idx, scores = nearest(query_vec, X, k)
    st.table(
        pd.DataFrame(
            {"cosine": [f"{s:.4f}" for s in scores], "sentence": [texts[i] for i in idx]},
            index=pd.RangeIndex(1, len(idx) + 1, name="rank"),
        )
    )
    return {int(i): f"#{r + 1} neighbour, cosine {s:.3f}" for r, (i, s) in enumerate(zip(idx, scores, strict=True))}


def word_in_context(model_ref, revision, corpus: Corpus, params: dict) -> None:
    """One word's occurrences across the corpus at a chosen layer, plus self-similarity per layer."""
    c1, c2 = st.columns([1, 3])
    word = c1.text_input("Word", "bank", key="word", max_chars=40, persist_state="page").strip()
    if not word:
        st.info("Type a word that occurs in the corpus.")
        return
    with ui.guard("find the word in the sentences") as finding:
        try:
            occ = resources.word_occurrences(model_ref, revision, tuple(corpus.texts), word)
        except ValueError as err:
            if isinstance(err, UserFacingError):  # a timeout, a model error: the guard's box
                raise
            ui.user_warning(str(err))  # the word is not in the corpus: a hint, not an error
            return
    if finding.failed:
        return
    L = occ.vectors.shape[0] - 1
    layer = c2.slider("Layer (0 = static token embedding)", 0, L, L, key="word_layer", persist_state="page")
    st.caption(f"{occ.count} occurrence(s) of “{ui.escape_markdown(word)}”. Word-pieces are averaged into the word.")
    if occ.count >= MAX_OCCURRENCES:
        ui.user_warning(f"Only the first {MAX_OCCURRENCES:,} occurrences are embedded and shown.")
    labels = [corpus.labels[i] for i in occ.sentence]
    texts = [corpus.texts[i] for i in occ.sentence]
    if occ.count >= 2:
        with ui.guard("project the occurrences") as projecting:
            proj = project(occ.vectors[layer], {**params, "dim": 2})
        if projecting.failed:
            return
        for notice in proj.notices:
            st.caption(notice)
        name = projection.NAMES[proj.method]
        ui.plotly(
            figures.projection_scatter(
                proj.coords,
                texts,
                labels,
                title=f"“{word}” at layer {layer} ({name})",
                axis_titles=(f"{name} 1", f"{name} 2"),
            ),
            key="word_scatter",
            filename=f"word_{word}_layer{layer}",
        )
    with ui.guard("compute the baseline (random token pairs)") as baseline:
        base = resources.anisotropy(model_ref, revision, tuple(corpus.texts))
    if baseline.failed:
        return
    sim = self_similarity(occ.vectors)
    ui.plotly(figures.self_similarity_chart(sim, base, word), key="self_sim", filename=f"self_similarity_{word}")
    st.caption(
        "Self-similarity: the average cosine between the word's occurrences at each layer (Ethayarajh 2019). "
        "At layer 0 every occurrence is the same vector (1.0). A falling curve means the model gives the word "
        "a more context-specific meaning in deeper layers; compare it with the dashed baseline (random token "
        "pairs), since all representations in a layer share a common direction (anisotropy)."
    )
