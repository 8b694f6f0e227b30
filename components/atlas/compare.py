"""The Atlas page's comparison section: when `python -m encoderscope atlas compare DIR_A DIR_B` has stored a
comparison in this atlas's folder, a's map coloured by neighbour overlap beside b's map aligned onto it, linked
(hover or click a point: ringed in both; its neighbours under a and under b listed), the movers, and the overlaps
as CSV. Drawn with the Compare page's pair map (components/compare); nothing is computed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from components import ui
from components.compare import cache, canvas, payloads
from encoderscope import atlas as atlas_lib
from encoderscope import tabular

MAX_DRAWN = 100_000  # points in the pair map (a uniform sample above it; the tables use every point)
MAX_HOVER_TEXTS = 20_000  # above this, hover shows ids only (texts do not travel in bulk)


def section(opened) -> None:
    """Nothing for an uploaded atlas or one without comparisons but a hint; otherwise the linked maps."""
    if opened is None or opened.atlas is None:
        return
    folder = Path(opened.atlas.path)
    names = atlas_lib.list_compares(folder)
    st.subheader("Compared with another model")
    if not names:
        st.caption("Embed the same corpus with a second model, then `python -m encoderscope atlas compare "
                   "THIS_ATLAS OTHER_ATLAS` colours this map by how much each point's neighbours change and "
                   "draws the other model's map beside it.")
        return
    name = st.selectbox("Comparison", names, key="atlas_compare_name") if len(names) > 1 else names[0]
    with ui.guard("read the stored comparison") as reading:
        stamp = (folder / f"compare-{name}.json").stat().st_mtime
        comp = cache.atlas_comparison(str(folder), name, stamp)
    if reading.failed:
        return
    meta, table = comp.meta, comp.points
    st.caption(f"a: {ui.escape_markdown(meta.get('model_a') or 'this atlas')} · b: "
               f"{ui.escape_markdown(meta.get('model_b') or meta.get('b', name))} · {meta['N']:,} points · "
               f"mutual k-NN {meta['mutual_knn']:.3f} (k = {meta['k']}, in the full vector spaces) · Procrustes "
               f"disparity {meta['disparity']:.3f}")
    for note in meta.get("notes") or []:
        ui.user_warning(note)
    linked_maps(opened, table, meta, name)


def linked_maps(opened, table: pd.DataFrame, meta: dict, name: str) -> None:
    points = opened.points
    n = len(points)
    rows = np.arange(n)
    if n > MAX_DRAWN:
        rows = np.sort(np.random.default_rng(0).choice(n, MAX_DRAWN, replace=False))
        ui.user_warning(f"{n:,} points: the maps draw a uniform sample of {MAX_DRAWN:,}; the tables use every point.")
    position = {int(i): r for r, i in enumerate(points.index[rows])}  # id -> drawn index
    key = f"atlas_pairs_{name}"
    state = st.session_state.get(key)
    picked = canvas.clicked(state, len(rows)) if state is not None else None
    neighbours = ([], [])
    if picked is not None:
        row = table.iloc[int(rows[picked])]
        neighbours = tuple([position[int(i)] for i in row[col] if int(i) in position]
                           for col in ("neighbours_a", "neighbours_b"))
    texts = points["text"].iloc[rows].astype(str).tolist() if len(rows) <= MAX_HOVER_TEXTS else None
    data = payloads.pair_map(
        points[["x", "y"]].to_numpy(np.float32)[rows], table[["x_b", "y_b"]].to_numpy(np.float32)[rows],
        table["overlap"].to_numpy(np.float32)[rows], ("a: this atlas", f"b: {name} (aligned onto a)"), texts=texts,
        selected=picked, neighbours_a=neighbours[0], neighbours_b=neighbours[1], tag="atlas_compare",
        legend=f"overlap@{meta['k']}", filename=f"atlas_compare_{name}",
    )
    canvas.pair_map(data, key=key)
    st.caption("Colour: the share of each point's nearest neighbours under a that stay nearest under b (blue kept, "
               "red moved). Hover a point to ring it on both maps; click it to list its neighbours under each.")
    if picked is not None:
        show_point(points, table, int(rows[picked]))
    movers = [int(i) for i in meta.get("movers", [])]
    if movers:
        st.markdown("**Biggest movers**")
        by_id = table.set_index("id")
        st.dataframe(pd.DataFrame({"id": movers, "overlap": [round(float(by_id.at[i, "overlap"]), 3) for i in movers],
                                   "text": [str(points.at[i, "text"]) for i in movers]}),
                     hide_index=True, width="stretch")
    export = pd.DataFrame({"id": table["id"], "overlap": table["overlap"],
                           "text": points["text"].astype(str).map(tabular.spreadsheet_safe).to_numpy()})
    st.download_button("⬇️ Overlaps (.csv)", lambda: export.to_csv(index=False).encode(),
                       f"atlas_overlap_{name}.csv", "text/csv", key=f"{key}_csv")


def show_point(points: pd.DataFrame, table: pd.DataFrame, row: int) -> None:
    """The clicked point's text and its neighbours under a and under b (shared ones marked)."""
    entry = table.iloc[row]
    st.markdown(f"**Point {int(entry['id'])}** (overlap {float(entry['overlap']):.2f}):")
    st.text(str(points["text"].iloc[row])[:2000])
    ids_a, ids_b = [int(i) for i in entry["neighbours_a"]], [int(i) for i in entry["neighbours_b"]]
    shared = set(ids_a) & set(ids_b)
    for column, label, ids in zip(st.columns(2), ("a", "b"), (ids_a, ids_b), strict=True):
        column.markdown(f"Neighbours under **{label}**")
        column.dataframe(pd.DataFrame({"id": ids, "shared": ["✓" if i in shared else "" for i in ids],
                                       "text": [str(points.at[i, "text"]) for i in ids]}),
                         hide_index=True, width="stretch")
