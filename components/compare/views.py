"""Sections of the Compare page: the two model pickers, the corpus, the layer × layer map, the linked maps.

Search (top-k under each model, "why") is in `components.compare.search`. Every number drawn here comes from
`encoderscope.compare` through the page's cache section (`components.compare.cache`).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import streamlit as st

from components import ui
from components.compare import cache, canvas, payloads
from components.compare.cache import Side
from components.embeddings import views as embedding_views
from components.heatmap import canvas as heatmap
from encoderscope import local_models, models, settings, tabular

MPNET = "sentence-transformers/all-mpnet-base-v2"
DEFAULTS = {"a": models.BUNDLED_ENCODER, "b": MPNET}
KIND_ENCODER, KIND_DECODER = "encoder", "decoder"
METRIC_HELP = ("Linear CKA (Kornblith et al. 2019): 1 = the same geometry up to rotation and scale. Debiased CKA "
               "(Nguyen et al. 2021) removes the small-sample bias that lifts plain CKA. Mutual k-NN (Huh et al. "
               "2024): the share of each text's k nearest neighbours both layers agree on.")


# --- inputs -------------------------------------------------------------------------------------


def _options() -> dict[str, str]:
    """{option text: kind}: the text encoders and causal decoders the other pages offer, bundled ones first."""
    conf = settings.get()
    local = (lambda kind: local_models.find(kind)) if conf.allow_local_paths else (lambda kind: [])
    out = {name: KIND_ENCODER for name in [models.BUNDLED_ENCODER, *models.CURATED_ENCODERS, *local("encoder")]}
    out.update({name: KIND_DECODER for name in [models.BUNDLED_DECODER, *models.CURATED_DECODERS, *local("decoder")]})
    return out


def _bundled_ref(name: str) -> str | None:
    return None if name in (models.BUNDLED_ENCODER, models.BUNDLED_DECODER) else name


def picker(param: str, label: str) -> tuple[Side, str] | None:
    """One model picker over encoders and decoders (`?a=` / `?b=` in the URL); returns (side, display name),
    or None while a custom entry is empty. A typed hub id or folder gets a kind switch."""
    kinds = _options()
    default = DEFAULTS[param]
    names = [default, *(n for n in kinds if n != default)]  # the default first: url_picker starts there
    picked = ui.url_picker(
        param, label, names, (ui.CUSTOM_MODEL, f"Model {param.upper()}"),
        unavailable=lambda wanted, _r: f"The model {wanted[:100]!r} from the link is not available on this server; "
        "pick one of the listed models.",
        format_func=lambda n: f"{n}  ·  decoder" if kinds.get(n) == KIND_DECODER else n,
    )
    ui.sync_query(**{param: None if picked.value == default else picked.value})
    if not picked.custom:
        return Side(kinds[picked.value], _bundled_ref(picked.value)), picked.value
    kind = st.radio("Loads as", [KIND_ENCODER, KIND_DECODER], horizontal=True, key=f"{param}_kind")
    if not picked.value:
        st.info("Type a hub id or a local folder.")
        return None
    return Side(kind, picked.value), picked.value


def corpus() -> tuple[list[str], list[str]] | None:
    """The Embeddings page's corpus inputs (example corpora, typed sentences, CSV; capped by the server's
    sentence limit). Returns (texts, labels), or None after a message."""
    chosen = embedding_views.corpus_input()
    if chosen is None:
        return None
    for notice in chosen.notices:
        ui.user_warning(notice)
    if chosen.vectors is not None:
        ui.user_warning("Comparing models needs texts that both models can read: pick an example corpus, type "
                        "sentences or upload a CSV.")
        return None
    duplicated = sum(c - 1 for c in Counter(chosen.texts).values() if c > 1)
    if duplicated:
        ui.user_warning(f"{duplicated} text{'s are' if duplicated > 1 else ' is'} repeated: identical texts get "
                        "identical vectors under both models, so they tie in k-NN (each is the other's nearest "
                        "neighbour, and which of them ranks first is arbitrary).")
    return chosen.texts, chosen.labels


def ready(side: Side, name: str, texts: tuple[str, ...]) -> bool:
    """Load the side's model and run it over the texts (cached); False after a clear error box, so the page can
    still show the other side."""
    return ui.load_model(side.kind, side.ref, side.revision) is not None and run_features(side, name, texts)


def run_features(side: Side, name: str, texts: tuple[str, ...], untrained: bool = False, noun: str = "texts") -> bool:
    """Run the side's model over the texts once (cached), with a progress bar; False after an error box.

    The bar's slot exists on every run, hit or miss: an element that appears only on a miss would shift the
    elements after it, and Streamlit would then rebuild the page's tabs and show the first one again."""
    slot = st.empty()
    if cache.has_features(side, texts, untrained):
        return True
    what = f"{'an untrained copy of ' if untrained else ''}{ui.escape_markdown(name)}"
    bar = slot.progress(0.0, text=f"Running {what} on {len(texts):,} {noun} (every layer) …")

    def progress(fraction: float, text: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"Running {what}: {text}")

    with ui.guard(f"run {name} on these {noun}") as run:
        cache.features(side, texts, untrained, progress=progress)
    slot.empty()
    return not run.failed


# --- the layer × layer map --------------------------------------------------------------------------


def metric_picker(container, key: str) -> str:
    """A metric select box (linear CKA, debiased CKA, mutual k-NN) for the sections of other pages."""
    return container.selectbox("Metric", list(payloads.METRICS), format_func=payloads.METRICS.get, key=key,
                               help=METRIC_HELP)


def measure_switch(container, key: str, param: str, runs: str, idle: str) -> bool:
    """The "Measure" toggle of a section that runs models only on request, in the URL as `?{param}=1`. `runs`:
    its help (what switching on runs); `idle`: the caption shown while it is off."""
    st.session_state.setdefault(key, ui.query_str(param) == "1")
    on = container.toggle("Measure", key=key, help=runs)
    ui.sync_query(**{param: "1" if on else None})
    if not on:
        st.caption(idle)
    return on



def metric_controls(n_texts: int) -> tuple[str, int, bool]:
    """Metric, k (mutual k-NN and neighbour overlap) and the untrained-baseline toggle, all in the URL."""
    metrics = list(payloads.METRICS)
    st.session_state.setdefault("metric", ui.query_str("metric", "cka") if ui.query_str("metric") in metrics else "cka")
    st.session_state.setdefault("k", ui.query_int("k", 10, 1, 100))
    st.session_state.setdefault("untrained", ui.query_str("untrained") == "1")
    c1, c2, c3 = st.columns([2, 1, 2])
    metric = c1.selectbox("Metric", metrics, format_func=payloads.METRICS.get, key="metric", help=METRIC_HELP)
    k = int(c2.number_input("k (neighbours)", 1, 100, key="k", help="Neighbours per text for mutual k-NN and "
                            "the neighbour overlap of the maps below."))
    untrained = c3.toggle("Add the untrained baseline", key="untrained",
                          help="The same map against b's architecture with freshly initialised weights: what the "
                          "architecture gives for free, before any training.")
    ui.sync_query(metric=None if metric == "cka" else metric, k=None if k == 10 else k,
                  untrained="1" if untrained else None)
    if k >= n_texts:
        ui.user_warning(f"k = {k} needs more than {k} texts; this corpus has {n_texts}. Lower k or add texts.")
    return metric, k, untrained


def layer_map(a: Side, b: Side, names: tuple[str, str], texts: tuple[str, ...], metric: str, k: int,
              untrained: bool, key: str = "compare_map", noun: str = "texts") -> np.ndarray | None:
    """The layer × layer map (and, with `untrained`, the baseline beside it), caption and CSV export.
    Returns the matrix `[La + 1, Lb + 1]` drawn, or None after an error box."""
    with ui.guard("compare the layers") as run, st.spinner("Comparing every layer pair …"):
        sim = cache.similarity(a, b, texts, metric, k)
    if run.failed:
        return None
    base = None
    if untrained and run_features(b, names[1], texts, untrained=True, noun=noun):
        with ui.guard("compare with the untrained baseline") as run_base:
            base = cache.similarity(a, b, texts, metric, k, untrained_b=True)
        if run_base.failed:
            base = None
    for note in sim.notes:
        ui.user_warning(note)
    columns = st.columns(2) if base is not None else [st.container()]
    with columns[0]:
        heatmap.heatmap(payloads.similarity_map(sim.matrix, *names, metric, tag=f"{key}:{metric}"), key=key)
    if base is not None:
        with columns[1]:
            heatmap.heatmap(payloads.similarity_map(base.matrix, names[0], f"untrained {names[1]}", metric,
                                                    tag=f"{key}_untrained:{metric}"), key=f"{key}_untrained")
    st.caption(map_caption(a == b, sim.matrix, base.matrix if base is not None else None, noun))
    st.download_button("⬇️ Matrix (.csv)", payloads.matrix_csv(sim.matrix, *names), f"compare_{metric}.csv",
                       "text/csv", key=f"{key}_csv", help=f"[{sim.matrix.shape[0]} × {sim.matrix.shape[1]}] on "
                       f"{sim.n} texts; rows: layers of {names[0]}")
    return sim.matrix


def map_caption(same: bool, matrix: np.ndarray, base: np.ndarray | None, noun: str = "texts") -> str:
    """What the band and the bright cells mean, with the numbers of this map."""
    last = float(matrix[-1, -1])
    text = (f"Row i, column j: how alike layer i of the first model and layer j of the second represent the same "
            f"{noun if not same else noun + ' (one model against itself: 1 on the diagonal)'}; 0 is the "
            "embedding output. A bright diagonal band means the two models process the texts in the same order, "
            "layer for layer; a bright cell off the band means a layer of one model already matches a later or "
            "earlier layer of the other. Bright rows or columns at the start are partly free: random "
            "transformers score high there, which the untrained baseline shows. "
            f"Last layer against last layer: {last:.3f}.")
    if base is not None:
        text += f" Against the untrained copy: {float(base[-1, -1]):.3f} (what training added at the top)."
    return text


# --- the two maps ----------------------------------------------------------------------------------


def pair_maps(a: Side, b: Side, names: tuple[str, str], texts: tuple[str, ...], k: int,
              key: str = "compare_pairs") -> None:
    """b's map aligned onto a's, coloured by neighbour overlap, linked; the clicked text's neighbours under
    each model; the biggest movers; the overlaps as CSV."""
    if k >= len(texts):
        return
    method = st.radio("Layout", ["pca", "umap"], horizontal=True, format_func=str.upper, key="layout",
                      help="Each model's sentence vectors projected to 2-D; b's map is then rotated, reflected, "
                      "scaled and shifted onto a's (orthogonal Procrustes) so the same text sits in a comparable "
                      "place.")
    if method == "umap":
        embedding_views.wait_for_umap(len(texts))
    with ui.guard("compare the neighbours") as run, st.spinner("Finding each text's neighbours under both models …"):
        nb = cache.neighbours(a, b, texts, k)
        ya, yb, disparity = cache.layouts(a, b, texts, method)
    if run.failed:
        return
    for note in nb.notes:
        if "exact duplicate" not in note or len(set(texts)) == len(texts):  # the corpus input already said it
            ui.user_warning(note)
    state = st.session_state.get(key)
    picked = canvas.clicked(state, len(texts)) if state is not None else None
    data = payloads.pair_map(
        ya, yb, nb.overlap, (f"a: {names[0]}", f"b: {names[1]} (aligned onto a)"), texts=list(texts), selected=picked,
        neighbours_a=None if picked is None else nb.neighbours_a[picked],
        neighbours_b=None if picked is None else nb.neighbours_b[picked],
        legend=f"overlap@{k}", note=f"mutual k-NN {nb.mutual_knn:.3f} · Procrustes disparity {disparity:.3f}",
    )
    canvas.pair_map(data, key=key)
    st.caption(f"Each point is one text; its colour is the share of its {k} nearest neighbours under a that are "
               f"also among its {k} nearest under b (cosine, itself excluded): blue kept its neighbourhood, red "
               "moved. Hover a point to ring it in both maps; click it to list its neighbours under each model.")
    if picked is not None:
        neighbour_tables(picked, nb, texts, names)
    movers(nb, texts, names)
    overlaps = pd.DataFrame({"text": [tabular.spreadsheet_safe(t) for t in texts], "overlap": nb.overlap,
                             "a_x": ya[:, 0], "a_y": ya[:, 1], "b_aligned_x": yb[:, 0], "b_aligned_y": yb[:, 1]})
    st.download_button("⬇️ Overlaps (.csv)", overlaps.to_csv(index_label="id").encode(), f"overlap_k{k}.csv",
                       "text/csv", key=f"{key}_csv")


def neighbour_tables(i: int, nb, texts: tuple[str, ...], names: tuple[str, str]) -> None:
    """The clicked text and its neighbours under a and under b, shared ones marked."""
    st.markdown(f"**Text {i}** (overlap {nb.overlap[i]:.2f}):")
    st.text(texts[i])
    shared = set(nb.neighbours_a[i].tolist()) & set(nb.neighbours_b[i].tolist())
    for column, name, ids in zip(st.columns(2), names, (nb.neighbours_a[i], nb.neighbours_b[i]), strict=True):
        column.markdown(f"Neighbours under **{ui.escape_markdown(name)}**")
        column.dataframe(pd.DataFrame({"id": ids, "shared": ["✓" if j in shared else "" for j in ids],
                                       "text": [texts[j] for j in ids]}), hide_index=True, width="stretch")


def movers(nb, texts: tuple[str, ...], names: tuple[str, str], top: int = 10) -> None:
    """The texts whose neighbourhoods changed most (lowest overlap first)."""
    ids = [int(i) for i in nb.movers[:top]]
    st.markdown("**Biggest movers**: the texts whose nearest neighbours changed most between the two models")
    st.dataframe(pd.DataFrame({
        "id": ids, "overlap": [round(float(nb.overlap[i]), 3) for i in ids], "text": [texts[i] for i in ids],
        f"nearest under {names[0]}": [texts[int(nb.neighbours_a[i][0])] for i in ids],
        f"nearest under {names[1]}": [texts[int(nb.neighbours_b[i][0])] for i in ids],
    }), hide_index=True, width="stretch")
