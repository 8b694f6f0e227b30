"""Figures of the Features views: one feature's activation histogram."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .common import FONT, escape_hover

BINS = 30


def activation_histogram(values: np.ndarray, label: str, total: int) -> go.Figure:
    """Bars of how many points `[n]` activate the feature how strongly (only the points where it is active,
    `values` > 0, out of `total`); x = activation, y = points. Bin edges are explicit so the drawn counts are
    the ones numpy computes."""
    values = np.asarray(values, np.float64)
    values = values[values > 0]
    fig = go.Figure()
    if len(values):
        counts, edges = np.histogram(values, bins=BINS)
        fig.add_bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), marker_color="#3b528b",
                    hovertemplate="activation %{x:.3f}: %{y} points<extra></extra>")
    fig.update_layout(
        title=f"{escape_hover(label[:60])}: active in {len(values):,} of {total:,} points",
        xaxis_title="activation", yaxis_title="points", font=FONT, height=260,
        margin=dict(l=50, r=10, t=40, b=40), bargap=0.05,
    )
    return fig
