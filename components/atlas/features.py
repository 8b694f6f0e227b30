"""The Atlas page's Features panel: the atlas's SAE features (`python -m encoderscope atlas features DIR`).

Search features by keyword, read one feature's card (label, frequency, activation histogram, top texts), colour
the map by its activation, list a clicked point's features, and split a search hit's cosine with the query over
the features they share (`es.features.explain`). The numbers come from the library; this module only draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components import resources, ui
from components.atlas import cache as atlas_resources
from components.atlas import payload as atlas_payload
from components.atlas.cache import Opened

TOP_TEXTS = 20
OPTIONS = 200  # features offered in the picker for one search (most frequent first)

_VIRIDIS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], np.float64)
DIM = [225, 225, 225]  # points where the feature is not active: faint, so the active ones stand out


def _ramp(t: float) -> list[int]:
    """Viridis at t in [0, 4] (its five anchors, linearly between them)."""
    i = min(int(t), 3)
    return [int(round(v)) for v in _VIRIDIS[i] + (t - i) * (_VIRIDIS[i + 1] - _VIRIDIS[i])]


# slots 0..61 weak -> strong activation (light green -> dark purple), 62 = not active: the 63 slots of PALETTE
PALETTE = [_ramp(t) for t in np.linspace(3.2, 0, atlas_payload.COLOURS)] + [DIM]


def feature_colouring(features, feature: int) -> tuple[atlas_payload.Colouring, np.ndarray]:
    """Palette slots `[N]` for one feature's activation (0..61 by activation / its maximum, 62 where it is not
    active), and the activation `[N]` float32 (0 where not active). `features`: an AtlasFeatures."""
    hit = (features.ids == feature) & (features.values > 0)  # [N, k]
    activation = np.where(hit, features.values, 0).max(axis=1).astype(np.float32)
    active = activation > 0
    top = float(activation.max()) if active.any() else 1.0
    last = atlas_payload.COLOURS - 1
    codes = np.full(len(activation), atlas_payload.NOISE, np.uint8)
    codes[active] = np.minimum(np.rint(activation[active] / top * last), last).astype(np.uint8)
    legend = [("active (darker = stronger)", last, int(active.sum())),
              ("not active", atlas_payload.NOISE, int((~active).sum()))]
    return atlas_payload.Colouring(codes, legend), activation


REFUSED = object()  # _features' answer when the guard already showed why the features cannot be used


def _features(opened: Opened):
    """The atlas's AtlasFeatures; None (no atlas folder, or no features) or REFUSED (the guard's box is shown)."""
    if opened.atlas is None:
        return None
    with ui.guard("open the atlas's features") as opening:
        found = atlas_resources.atlas_features(opened, opened.key)
    return REFUSED if opening.failed else found


def panel(opened: Opened) -> int | None:
    """The Features expander: keyword search, a picker, the chosen feature's card. Returns the chosen feature
    id (the map is then coloured by it), or None."""
    if opened.atlas is None:
        st.caption("Features are off: an uploaded points.parquet has no vectors to learn them from. Open an atlas "
                   "folder built with `atlas build`.")
        return None
    with st.expander("Features: what the vectors are made of (sparse autoencoder)", expanded=True):
        found = _features(opened)
        if found is None:
            st.caption("This atlas has no features yet. Learn them with "
                       f"`python -m encoderscope atlas features {opened.name}`, then reload.")
        if found is None or found is REFUSED:
            return None
        table = found.table
        st.caption(f"{found.sae.n_features:,} features, {found.sae.k} active per point · reconstruction "
                   f"leaves {found.meta.get('fvu', float('nan')):.1%} of the variance unexplained · "
                   f"{found.meta.get('dead', 0):,} never active")
        feature = pick(table, "feature")
        if feature is None:
            return None
        card(opened, found, feature)
        return feature


def card(opened: Opened, found, feature: int) -> None:
    """The chosen feature's card, for the atlas."""
    _, _, activation = atlas_resources.feature_payload(opened, opened.key, feature)
    draw_card(feature, found.table.iloc[feature], activation, opened.points["text"], key="feature")


def draw_card(feature: int, row, activation: np.ndarray, texts: pd.Series, key: str) -> None:
    """One feature: label, frequency, mean and strongest activation, the activation histogram `activation` `[N]`
    and its top texts. `row`: the feature's row of a describe table; `texts` `[N]`. Shared with the Embeddings
    page's Features view."""
    from encoderscope.figures.features import activation_histogram

    st.markdown(f"**Feature {feature}:** {ui.code_span(row['label'])}")
    c1, c2, c3 = st.columns(3)
    c1.metric("Active in", f"{100 * row['frequency']:.2f} % of points")
    c2.metric("Mean activation", f"{row['mean_activation']:.3f}")
    c3.metric("Strongest", f"{float(activation.max()):.3f}")
    st.plotly_chart(activation_histogram(activation, str(row["label"]), len(activation)), key=f"{key}_hist")
    ids = np.asarray(row["top_ids"], np.int64)[:TOP_TEXTS]
    top = pd.DataFrame({"id": ids, "activation": np.round(np.asarray(row["top_values"])[:TOP_TEXTS], 4),
                        "text": texts.iloc[ids].astype(str).tolist()})
    st.markdown(f"Its top {len(top)} texts")
    st.dataframe(top, hide_index=True, key=f"{key}_top", height="content")  # all of them, no inner scrolling


def pick(table, key: str) -> int | None:
    """Keyword search over the labels and a picker (most frequent first); the chosen feature id or None."""
    from encoderscope.features import search_labels

    query = st.text_input("Search features by keyword (or a feature number)", key=f"{key}_query", max_chars=200)
    shown = search_labels(table, query, OPTIONS) if query.strip() else \
        table.sort_values("frequency", ascending=False).head(OPTIONS)
    if shown.empty:
        ui.user_warning(f"No feature label contains {query!r}.")
        return None
    labels = table["label"].tolist()
    feature = st.selectbox(
        "Feature", [None] + shown["feature"].astype(int).tolist(), key=f"{key}_pick",
        format_func=lambda f: "(none)" if f is None else
        f"#{f} · {labels[f]} · {100 * table['frequency'].iloc[f]:.2f} %",
    )
    return None if feature is None else int(feature)


def point_features(opened: Opened, result) -> None:
    """The active features of the point clicked on the map, strongest first."""
    try:
        row = int(getattr(result, "clicked", None))
    except (TypeError, ValueError):
        return
    found = _features(opened) if opened.atlas is not None else None
    if found is None or found is REFUSED or not 0 <= row < len(found.ids):
        return
    active = found.values[row] > 0
    ids = found.ids[row][active]
    labels = found.table["label"].tolist()
    st.markdown(f"Features of point {row} ({len(ids)} active)")
    st.dataframe(pd.DataFrame({"feature": ids, "label": [labels[f] for f in ids],
                               "value": np.round(found.values[row][active], 4)}),
                 hide_index=True, key="point_features")


def why_hit(opened: Opened, hits: pd.DataFrame | None, result, picked: int | None) -> None:
    """For a typed query and a chosen hit: the features both share and their share of the cosine (exact split
    by `es.features.explain`: pairs of active features plus a residual)."""
    from encoderscope.features import explain

    query = None if hits is None else hits.attrs.get("query")
    found = _features(opened) if query else None
    if found is None or found is REFUSED:
        return
    from components.atlas.views import chosen_hit

    hit = chosen_hit(hits, result, picked)
    if hit is None:
        return
    with ui.guard("split the cosine over features") as splitting:
        model_ref = atlas_resources.model_of(opened.meta)
        pooling = str(opened.meta.get("pooling") or "auto")
        q = np.asarray(resources.embed_block(model_ref, opened.meta.get("revision") or None,
                                             (ui.clean_text(query, 1000)[0],), pooling)[0], np.float32)
        ex = explain(found.sae, q, np.asarray(opened.atlas.vectors[hit], np.float32), found.table["label"].tolist())
    if splitting.failed:
        return
    st.markdown(f"**Features the query and point {hit} share**: {len(ex.shared)} of them carry "
                f"{ex.shared_total:+.3f} of the cosine {ex.cosine:.3f} (other feature pairs "
                f"{float(ex.terms['value'].sum()) - ex.shared_total:+.3f}, bias and reconstruction error "
                f"{ex.residual:+.3f})")
    shared = ex.shared.assign(share=ex.shared["contribution"] / ex.cosine if ex.cosine else np.nan)
    st.dataframe(shared.round(4), hide_index=True, key="why_features")
