"""Sections of the Atlas page (/atlas): open an atlas, search it, the map, the clicked point, the selection."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from components import resources, ui
from components.atlas import cache as atlas_resources
from components.atlas import payload as atlas_payload
from components.atlas.cache import Opened
from components.atlas.canvas import atlas_map
from encoderscope import settings, tabular
from encoderscope.atlas import selection

MAX_LABELS = 400  # cluster names sent to the map (the biggest clusters); the renderer draws those that fit
MAX_TABLE_ROWS = 10_000  # selected rows shown in the table; the CSV has all of them


# --- opening ---------------------------------------------------------------------------------


def choose() -> Opened | None:
    """The atlas the user opens: one from the server's atlas folder (by name; `?atlas=NAME` in the URL) or an
    uploaded points.parquet. Public mode shows no server path, and lists a folder only where the operator
    set ENCODERSCOPE_ATLAS_DIR."""
    root = atlas_resources.atlas_root()
    sources = (["Atlas folder"] if root is not None else []) + ["Upload points.parquet"]
    source = st.radio("Open", sources, horizontal=True, key="source")
    if source == "Upload points.parquet":
        return _upload()
    table = atlas_resources.listing()
    where = "" if settings.get().public else f" in {ui.code_span(str(root))}"
    if table.empty:
        st.info(
            f"No atlases{where} yet. Build one with "
            "`python -m encoderscope atlas build CORPUS --text-column text --out "
            + ("DIR` (DIR inside the atlas folder)" if settings.get().public else f"{root}/NAME`")
            + ", or upload a points.parquet."
        )
        return None
    with st.expander(f"{len(table)} atlas(es){where}"):
        st.dataframe(
            table,
            hide_index=True,
            key="atlas_list",
            column_config={"points": st.column_config.NumberColumn(format="%d")},
        )
    wanted = ui.query_str("atlas", max_len=200)
    names = list(table["name"])
    if wanted and wanted not in names:
        # Never resolve a URL value as a path: only listed names open. Say why instead of silently ignoring it.
        ui.user_error(f"{wanted!r} is not an atlas in this server's atlas folder.")
        wanted = ""
    name = st.selectbox("Atlas", names, index=names.index(wanted) if wanted else 0, key="atlas")
    with ui.guard("open the atlas") as opening:
        opened = atlas_resources.open_folder(name)
    return None if opening.failed else opened


def _upload() -> Opened | None:
    upload = ui.file_uploader(
        "points.parquet (columns x, y, cluster, text; optional id, label)", key="points_upload", type=["parquet"]
    )
    if upload is None:
        return None
    with ui.guard("read the points") as reading:
        opened = atlas_resources.open_upload(upload.getvalue(), upload.name)
    return None if reading.failed else opened


def summary(opened: Opened) -> None:
    meta = opened.meta
    parts = [f"{len(opened.points):,} points"]
    if atlas_resources.model_of(meta):
        parts.append(f"model {ui.code_span(atlas_resources.model_of(meta))}")
    if meta.get("D"):
        parts.append(f"{int(meta['D'])}-d vectors")
    n_clusters = int((opened.points["cluster"].unique() >= 0).sum())
    parts.append(f"{n_clusters:,} clusters")
    st.caption(" · ".join(parts))


# --- search ----------------------------------------------------------------------------------


def search(opened: Opened) -> pd.DataFrame | None:
    """Exact cosine search over every vector (`es.atlas.search`): the top-k rows with their cosines, or None
    when there is no query. A typed query is embedded with the atlas's own model and pooling; without a model
    (an atlas built from --vectors alone) a clicked point is the query ("Find its neighbours")."""
    q1, q2 = st.columns([5, 1])
    model_ref = atlas_resources.model_of(opened.meta) if opened.atlas is not None else None
    if opened.atlas is None:
        why = "an uploaded points.parquet has no vectors"
    elif not model_ref:
        why = "this atlas was built from precomputed vectors without --model, so a text cannot be embedded"
    else:
        why = ""
    query = q1.text_input(
        "Search: type a query",
        key="query",
        max_chars=1000,
        disabled=bool(why),
        placeholder="e.g. how do I reset my password?",
        help=f"Text search is off: {why}."
        if why
        else "Embedded with the atlas's model; exact cosine over all vectors.",
        on_change=lambda: st.session_state.pop("search_point", None),  # a new text replaces a point query
    )
    k = int(q2.number_input("top-k", 1, 200, 10, key="top_k"))
    if why:
        st.caption(
            f"Text search is off: {why}." + (" Click a point to search by it." if opened.atlas is not None else "")
        )
    # A clicked point belongs to the atlas it was clicked on: opening another atlas forgets it.
    clicked = st.session_state.get("search_point")
    point = clicked[1] if isinstance(clicked, tuple) and clicked[0] == opened.key else None
    by_text = bool(query.strip()) and not why
    if opened.atlas is None or (not by_text and point is None):
        return None
    with ui.guard("search the atlas") as searching:
        if by_text:
            text = ui.clean_text(query, 1000)[0]
            pooling = str(opened.meta.get("pooling") or "auto")
            revision = opened.meta.get("revision") or None
            q = np.asarray(resources.embed_block(model_ref, revision, (text,), pooling)[0], np.float32)
        else:
            q = int(point)  # es.atlas.search takes a point id and checks its range
        ids, cos = atlas_resources.search(opened.key, q, k, _opened=opened)
    if searching.failed:
        return None
    hits = opened.points.iloc[ids][["text", "cluster"]].assign(cosine=np.round(cos, 4))
    hits.insert(0, "id", ids)
    hits = hits.reset_index(drop=True)
    # what "Why is this a hit?" explains against: the typed query (a point query has no text of its own to explain)
    hits.attrs["query"] = text if by_text else None
    return hits


def show_hits(hits: pd.DataFrame) -> int | None:
    """The hits table; a row selected in it is returned (its id), for "Why is this a hit?"."""
    st.markdown(f"**Top {len(hits)} neighbours** (red on the map; click one, on the map or here, to see why)")
    event = st.dataframe(
        hits, hide_index=True, key="hits", column_config={"cosine": st.column_config.NumberColumn(format="%.4f")},
        on_select="rerun", selection_mode="single-row",
    )
    rows = list(getattr(getattr(event, "selection", None), "rows", None) or [])
    return int(hits["id"].iloc[rows[0]]) if rows and 0 <= rows[0] < len(hits) else None


def why_hit(opened: Opened, hits: pd.DataFrame | None, result, picked: int | None) -> None:
    """"Why is this a hit?": the query against the clicked hit (on the map, or a row of the hits table), in the
    Embeddings page's "Why are these close?" view (components/why.py, on es.explain_similarity), with the
    atlas's own model. Only for a typed query, on an atlas with a model."""
    from components import why

    query = None if hits is None else hits.attrs.get("query")
    if not query:
        return
    hit = chosen_hit(hits, result, picked)
    if hit is None:
        st.caption("Click a hit (on the map or in the table) to see which words make it close to the query.")
        return
    st.markdown(f"**Why is point {hit} a hit?** The query against its text, token by token.")
    model_ref = atlas_resources.model_of(opened.meta)
    text = str(opened.points["text"].iloc[hit])
    why.explain_view(model_ref, opened.meta.get("revision") or None, query, text, key="atlas_why")


def chosen_hit(hits: pd.DataFrame, result, picked: int | None) -> int | None:
    """The hit the user chose: the point clicked on the map if it is a hit, else the row picked in the table."""
    try:
        clicked = int(getattr(result, "clicked", None))
    except (TypeError, ValueError):
        clicked = None
    ids = hits["id"].tolist()
    return clicked if clicked in ids else picked if picked in ids else None


# --- the map ---------------------------------------------------------------------------------


def cluster_labels(opened: Opened) -> list[dict]:
    """[{x, y, name, size}] for the MAX_LABELS biggest clusters, biggest first (the renderer places them in this
    order, skipping any that would overlap one already placed): clusters.parquet's names and centroids, else the
    library's cluster table (centroids, sizes, "cluster k")."""
    from encoderscope.atlas import layout

    clusters = opened.clusters
    if clusters is None or not {"cluster", "x", "y", "name", "size"} <= set(clusters.columns):
        pts = opened.points
        table = layout.cluster_table(pts[["x", "y"]].to_numpy(np.float64), pts["cluster"].to_numpy(np.int64), None)
        clusters = pd.DataFrame(table)
    clusters = clusters[clusters["cluster"] >= 0].sort_values("size", ascending=False, kind="stable")
    top = clusters.head(MAX_LABELS)
    return [
        {"x": float(r.x), "y": float(r.y), "name": str(r.name)[:40], "size": int(r.size)}
        for r in top[["x", "y", "name", "size"]].itertuples(index=False)
    ]


def map_key(opened: Opened) -> str:
    """The map component's key: one per atlas (its content key), so a selection or a clicked point made on one
    atlas is never read back on another."""
    return "atlas_map_" + hashlib.blake2b(opened.key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def atlas_view(opened: Opened, hits: pd.DataFrame | None, feature: int | None = None):
    """Colour picker, legend and the WebGL map (coloured by one SAE `feature`'s activation when given). Returns
    (component result, parsed selection shape or None)."""
    options = ["cluster"] + (["label"] if "label" in opened.points.columns else [])
    colour_by = st.radio("Colour by", options, horizontal=True, key="colour_by", disabled=feature is not None)
    data, colours = atlas_resources.payload(opened, opened.key, colour_by)
    if feature is not None:  # the Features panel's choice (components/atlas/features.py)
        data, colours, _ = atlas_resources.feature_payload(opened, opened.key, feature)
        colour_by = "activation"
    key = map_key(opened)
    state = st.session_state.get(key) or {}
    shape = selection.parse_shape(state.get("selection") if isinstance(state, dict) else None)
    highlight = [] if hits is None else hits["id"].tolist()
    result = atlas_map(data, cluster_labels(opened), highlight, shape, key=key)
    shape = selection.parse_shape(getattr(result, "selection", None))
    with st.expander(f"Legend ({len(colours.legend)} {colour_by} groups)"):
        legend = pd.DataFrame(colours.legend, columns=[colour_by, "slot", "points"])
        legend.insert(
            1, "colour", ["#{:02x}{:02x}{:02x}".format(*data.get("palette", atlas_payload.PALETTE)[s]) for s in legend.pop("slot")]
        )
        st.dataframe(legend, hide_index=True, key="legend")
    st.caption(
        "Wheel to zoom, drag to pan, click a point to read it. Box or Lasso: drag to select a region; the rows "
        "appear below. Positions are quantised to 1/65,536 of the map's extent for transfer."
    )
    return result, shape


def clicked_point(opened: Opened, result) -> None:
    clicked = getattr(result, "clicked", None)
    try:
        row = int(clicked)
    except (TypeError, ValueError):
        return
    if not 0 <= row < len(opened.points):
        return
    point = opened.points.iloc[row]
    st.markdown(
        f"**Point {row}** · cluster {int(point['cluster'])}"
        + (f" · label {ui.code_span(point['label'])}" if "label" in point else "")
    )
    st.text(str(point["text"])[: settings.get().max_chars])
    if opened.atlas is not None:
        st.button(
            "Find its nearest neighbours",
            key="point_search",
            on_click=lambda: st.session_state.update(search_point=(opened.key, row), query=""),
        )


# --- the selection ---------------------------------------------------------------------------


def selection_table(opened: Opened, shape: dict | None) -> pd.DataFrame | None:
    """The rows inside the selection shape (selected here, on the server, from the shape), shown and offered
    as CSV with formula-looking cells quoted. Returns them (None when nothing is selected)."""
    if shape is None:
        return None
    pts = opened.points
    mask = selection.select(pts["x"].to_numpy(), pts["y"].to_numpy(), shape)
    rows = pts[mask].rename_axis("id").reset_index()
    what = "box" if shape["kind"] == "box" else f"lasso of {len(shape['points'])} vertices"
    st.markdown(f"**Selection** ({what}): {len(rows):,} points")
    if rows.empty:
        st.caption("No points inside the selection.")
        return rows
    if len(rows) > MAX_TABLE_ROWS:
        st.caption(f"Showing the first {MAX_TABLE_ROWS:,}; the CSV has all {len(rows):,}.")
    st.dataframe(rows.head(MAX_TABLE_ROWS), hide_index=True, key="selection")
    st.download_button(
        "Download the selection (CSV)",
        data=lambda: csv_bytes(rows),
        file_name=f"{opened.name}_selection.csv",
        mime="text/csv",
        key="selection_csv",
        on_click="ignore",
    )
    return rows


def csv_bytes(rows: pd.DataFrame) -> bytes:
    """CSV of `rows` with every text cell passed through tabular.spreadsheet_safe (formula injection)."""
    safe = rows.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(tabular.spreadsheet_safe)
    return safe.to_csv(index=False).encode("utf-8")
