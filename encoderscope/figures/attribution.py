"""Figures for attribution: token-pair matrices, shaded tokens, the logit lens. Arrays in, `go.Figure` out.

Signed contributions use one diverging scale (blue negative, white zero, red positive) centred on zero with a
symmetric range, so a colour means the same thing in every figure of one explanation.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..tokens import clean_token
from .common import FONT, escape_hover, token_axis, token_heatmap, token_labels

__all__ = ["pair_matrix", "shaded_tokens", "lens_grid", "target_prob_line", "deletion_chart", "symmetric_range", "DIVERGING"]

DIVERGING = "RdBu_r"  # blue < 0 < red
LINE = 14  # tokens per line of a shaded text


def symmetric_range(*arrays: np.ndarray) -> float:
    """The largest |value| over `arrays` (1e-12 when all are zero), for a zero-centred colour range."""
    top = max((float(np.nanmax(np.abs(a))) for a in arrays if np.size(a)), default=0.0)
    return top if top > 0 else 1e-12


def pair_matrix(pairs: np.ndarray, tokens_a: list[str], tokens_b: list[str], title: str = "") -> go.Figure:
    """The token×token terms `[Ta, Tb]` of an exact decomposition (they sum to the cosine); rows are text A."""
    m = symmetric_range(pairs)
    return token_heatmap(
        pairs,
        tokens_a,
        tokens_b,
        zmin=-m,
        zmax=m,
        colorscale=DIVERGING,
        value_name="term",
        title=title,
        row_title="text A token",
        col_title="text B token",
    )


def shaded_tokens(texts: list[tuple[str, list[str], np.ndarray]], title: str = "", value_name: str = "contribution") -> go.Figure:
    """Each text as its tokens, wrapped into lines of `LINE` tokens, every cell shaded by its signed score.

    `texts`: (label, tokens `[T]`, scores `[T]`) per text. One heatmap: z holds the scores (NaN past a text's end),
    the cell text the cleaned token; hover reads "label · #i token: value". The colour bar is the legend.
    """
    rows_z, rows_text, rows_hover, ticks = [], [], [], []
    for label, tokens, scores in texts:
        scores = np.asarray(scores, dtype=np.float64)
        assert len(tokens) == len(scores), f"{len(tokens)} tokens vs {len(scores)} scores"
        for start in range(0, max(len(tokens), 1), LINE):
            z = np.full(LINE, np.nan)
            text, hover = [""] * LINE, [""] * LINE
            for c, i in enumerate(range(start, min(start + LINE, len(tokens)))):
                shown = escape_hover(clean_token(tokens[i]).strip()) or "␣"
                z[c], text[c] = scores[i], shown
                hover[c] = f"{escape_hover(label)} · #{i} {shown}: {scores[i]:+.4f}"
            ticks.append(escape_hover(label) if start == 0 else "")
            rows_z.append(z)
            rows_text.append(text)
            rows_hover.append(hover)
    m = symmetric_range(*[np.asarray(s, dtype=np.float64) for _, _, s in texts])
    trace = go.Heatmap(
        z=np.array(rows_z, dtype=np.float32),
        text=rows_text,
        customdata=rows_hover,
        texttemplate="%{text}",
        textfont=dict(size=12),
        zmin=-m,
        zmax=m,
        colorscale=DIVERGING,
        xgap=2,
        ygap=6,
        hovertemplate="%{customdata}<extra></extra>",
        hoverongaps=False,
        colorbar=dict(title=dict(text=value_name, side="right"), thickness=12),
    )
    layout = dict(
        title=dict(text=title, x=0, xanchor="left") if title else None,
        height=int(60 + 44 * len(rows_z)) + (30 if title else 0),
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        font=FONT,
        plot_bgcolor="white",
        xaxis=dict(visible=False),
        yaxis=dict(
            tickmode="array", tickvals=list(range(len(ticks))), ticktext=ticks, autorange="reversed", showgrid=False
        ),
    )
    return go.Figure(data=[trace], layout=layout)


def lens_grid(top_tokens: list, top_probs: np.ndarray, tokens: list[str], title: str = "") -> go.Figure:
    """The logit lens as a layers × positions grid: colour = the top token's probability (0–1), cell text = the
    top token, hover = the top k with probabilities. `top_tokens` `[L+1][T][k]`, `top_probs` `[L+1, T, k]`;
    row 0 is the embedding output, the last row the model's own prediction."""
    L1, T, k = top_probs.shape
    text = [[escape_hover(clean_token(top_tokens[layer][t][0]).strip()) or "␣" for t in range(T)] for layer in range(L1)]
    hover = [
        [
            f"layer {layer} · after {escape_hover(clean_token(tokens[t]))!s}<br>"
            + "<br>".join(
                f"{escape_hover(repr(top_tokens[layer][t][j]))} {top_probs[layer, t, j]:.3f}" for j in range(k)
            )
            for t in range(T)
        ]
        for layer in range(L1)
    ]
    trace = go.Heatmap(
        z=top_probs[:, :, 0].astype(np.float32),
        x=token_labels(tokens),  # category axis: unique "i·token" labels, ticks show the tokens
        y=list(range(L1)),
        text=text,
        customdata=hover,
        texttemplate="%{text}" if L1 * T <= 2400 else None,
        textfont=dict(size=10),
        zmin=0.0,
        zmax=1.0,
        colorscale="Blues",
        hovertemplate="%{customdata}<extra></extra>",
        colorbar=dict(title=dict(text="top-1 prob", side="right"), thickness=12),
    )
    layout = dict(
        title=dict(text=title, x=0, xanchor="left") if title else None,
        height=int(np.clip(120 + 18 * L1, 360, 900)),
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        font=FONT,
        xaxis=token_axis(tokens, title=dict(text="position (the guess is for the token after it)")),
        yaxis=dict(title=dict(text="layer"), autorange="reversed", dtick=max(1, L1 // 10)),
    )
    return go.Figure(data=[trace], layout=layout)


def target_prob_line(target_prob: np.ndarray, target: str) -> go.Figure:
    """The probability of the model's final next token `target`, read at every layer `[L+1]`."""
    layers = np.arange(len(target_prob))
    shown = escape_hover(repr(target))
    trace = go.Scatter(
        x=layers,
        y=np.asarray(target_prob, dtype=np.float32),
        mode="lines+markers",
        line=dict(color="#4f46e5"),
        hovertemplate=f"layer %{{x}}: P({shown}) = %{{y:.4f}}<extra></extra>",
    )
    layout = dict(
        title=dict(text=f"When does the model know {shown}?", x=0, xanchor="left"),
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        font=FONT,
        xaxis=dict(title=dict(text="layer (0 = embeddings)"), dtick=max(1, len(layers) // 15)),
        yaxis=dict(title=dict(text=f"P({shown})"), range=[0, 1.02]),
    )
    return go.Figure(data=[trace], layout=layout)


CURVE_COLOURS = ("#dc2626", "#2563eb", "#059669", "#7c3aed")


def deletion_chart(
    counts: np.ndarray,
    deletion: dict[str, tuple[np.ndarray, float]],
    random: np.ndarray,
    random_sd: np.ndarray,
    area_random: float,
    measure: str = "cosine",
    unit: str = "token",
    title: str = "",
) -> go.Figure:
    """The deletion test: each explanation's curve against the random orders' band (mean ± sd).

    counts `[S+1]`: units removed at each step (the x axis); deletion: {name: (curve `[S+1]`, its area)};
    random, random_sd `[S+1]`; area_random: the random curve's area. Names and areas go into the legend, so the
    chart reads alone; one trace per explanation, then "random mean" and the band ("random ± sd", a filled
    pair of traces, the lower one hidden from the legend).
    """
    counts = np.asarray(counts, dtype=np.int64)
    random = np.asarray(random, dtype=np.float64)
    sd = np.asarray(random_sd, dtype=np.float64)
    units = {"token": "tokens", "patch": "patches"}.get(unit, unit + "s")
    shown = escape_hover(measure)
    band = [
        go.Scatter(x=counts, y=random - sd, mode="lines", line=dict(width=0), hoverinfo="skip", showlegend=False,
                   name="random − sd"),
        go.Scatter(x=counts, y=random + sd, mode="lines", line=dict(width=0), fill="tonexty",
                   fillcolor="rgba(107,114,128,0.22)", name="random ± sd", hoverinfo="skip"),
        go.Scatter(x=counts, y=random, mode="lines", line=dict(color="#6b7280", dash="dash"),
                   name=f"random order (area {area_random:.3f})",
                   hovertemplate=f"random: %{{x}} {units} removed, {shown} %{{y:.4f}}<extra></extra>"),
    ]
    lines = [
        go.Scatter(
            x=counts, y=np.asarray(curve, dtype=np.float64), mode="lines+markers",
            line=dict(color=CURVE_COLOURS[i % len(CURVE_COLOURS)], width=2.5), marker=dict(size=5),
            name=f"{escape_hover(name)} (area {area:.3f})",
            hovertemplate=f"{escape_hover(name)}: %{{x}} {units} removed, {shown} %{{y:.4f}}<extra></extra>",
        )
        for i, (name, (curve, area)) in enumerate(deletion.items())
    ]
    # The legend sits at the figure's bottom edge (yref "container"), under the x axis title whatever the plot's
    # height; in a narrow column its entries wrap, so the bottom margin leaves a row for each.
    entries = len(deletion) + 2
    bottom = 60 + 20 * entries
    layout = dict(
        title=dict(text=title, x=0, xanchor="left") if title else None,
        height=300 + bottom,
        margin=dict(l=10, r=10, t=40 if title else 10, b=bottom),
        font=FONT,
        legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0),
        xaxis=dict(title=dict(text=f"{units} removed, highest-ranked first"), range=[0, max(int(counts[-1]), 1)],
                   dtick=1 if counts[-1] <= 12 else None),  # whole units: no "0.5 tokens removed" tick
        yaxis=dict(title=dict(text=shown)),
        plot_bgcolor="white",
    )
    fig = go.Figure(data=[*band, *lines], layout=layout)
    fig.update_xaxes(showgrid=True, gridcolor="#eee")
    fig.update_yaxes(showgrid=True, gridcolor="#eee")
    return fig
