"""The reusable "Why are these close?" view: explain the cosine of two texts, token by token.

Used by the Embeddings page (a sentence and one of its neighbours, or two typed texts) and the Atlas page
(a search query and a clicked hit). Two entry points:

    why.explain_view(model_ref, revision, text_a, text_b, key="emb_why")   # controls + compute + drawing
    why.draw(explanation, key="...")                                       # drawing only, for a result in hand

`explanation(...)` is the cached compute (st.cache_data keyed on model ref, revision, texts, method, steps, cap and
a digest of the centre). Under the drawing, `components/faithfulness.py` offers the deletion test, on request.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import encoderscope as es
from components import faithfulness, pool, resources, ui
from encoderscope import figures, settings
from encoderscope.attribution import tables

METHOD_LABELS = {
    "auto": "auto (exact for mean pooling)",
    "decomposition": "exact decomposition (mean pooling)",
    "integrated_gradients": "integrated gradients (any pooling)",
}


@st.cache_data(max_entries=32, show_spinner=False)
def explanation(
    model_ref: str | None, revision: str | None, text_a: str, text_b: str, method: str = "auto", steps: int = 32,
    max_tokens: int | None = None, centre_key: str | None = None, _centre: np.ndarray | None = None,
) -> es.SimilarityExplanation:
    """`es.explain_similarity` of the cached encoder (one heavy call: one job for the compute pool).
    `_centre` `[D]`: explain the centred cosine; `centre_key` (`pool.digest(_centre)`) keys it."""
    model = resources.encoder(model_ref, revision)
    return pool.run("explanation", (model_ref, revision, text_a, text_b, method, steps, max_tokens, centre_key),
                    es.explain_similarity, model, text_a, text_b, method=method, steps=steps, max_tokens=max_tokens,
                    centre=_centre)


def controls(key: str) -> tuple[str, int]:
    """Method and integration steps (steps only matter for integrated gradients). Returns (method, steps)."""
    top = settings.get().attribution_max_steps
    left, right = st.columns([2, 1])
    method = left.selectbox(
        "Method", list(METHOD_LABELS), format_func=METHOD_LABELS.get, key=f"{key}_method",
        help="Exact: the cosine of two mean-pooled embeddings split into token-pair terms. Integrated gradients: "
        "each text's input tokens, the other text held fixed (works for [CLS] and CLIP pooling too).",
    )
    steps = right.slider(
        "Steps (integrated gradients)", 4, top, min(32, top), step=4 if top >= 8 else 1, key=f"{key}_steps",
        help=f"More steps, smaller integration error; at most {top} on this server.",
    )
    return method, int(steps)


def explain_view(
    model_ref: str | None, revision: str | None, text_a: str, text_b: str, key: str, method: str | None = None,
    steps: int | None = None, centre: np.ndarray | None = None,
) -> es.SimilarityExplanation | None:
    """Controls (unless `method` is given), the explanation of `text_a` vs `text_b`, its drawing and the deletion
    test (on request). `centre` `[D]`: explain the centred cosine (what is specific to this pair).

    Returns the explanation, or None after showing why there is none (empty text, a model error).
    """
    if method is None:
        method, chosen = controls(key)
        steps = steps or chosen
    text_a, notes_a = ui.clean_text(text_a)
    text_b, notes_b = ui.clean_text(text_b)
    for notice in notes_a + notes_b:
        ui.user_warning(notice)
    centre_key = None if centre is None else pool.digest(np.asarray(centre, np.float64))
    with ui.guard("explain this similarity") as run, st.spinner("Explaining the similarity …"):
        ex = explanation(model_ref, revision, text_a, text_b, method, int(steps or 32), None, centre_key, centre)
    if run.failed:
        return None
    draw(ex, key)
    faithfulness.similarity_panel(model_ref, revision, (text_a, text_b, method, int(steps or 32), centre_key), ex, key)
    return ex


def draw(ex: es.SimilarityExplanation, key: str) -> None:
    """The cosine, method and completeness; the token×token matrix (exact method); both texts shaded by their
    tokens' signed contributions; notes; a CSV of the token scores."""
    name = "exact decomposition" if ex.method == "decomposition" else f"integrated gradients, {ex.steps} steps"
    c1, c2, c3 = st.columns(3)
    c1.metric("Centred cosine" if ex.explains == "centred cosine" else "Cosine", f"{ex.cosine:.4f}")
    c2.metric("Completeness error", "0 (exact)" if ex.method == "decomposition" else f"{ex.completeness:.2%}")
    c3.metric("Tokens", f"{len(ex.tokens_a)} × {len(ex.tokens_b)}")
    st.markdown(f"**Method:** {name} ({ui.escape_markdown(ex.pooling)} pooling)")
    for note in ex.notes:
        st.caption(ui.escape_markdown(note))
    if ex.explains == "centred cosine":
        st.caption(
            f"Centred: the cosine of the two unit sentence vectors after subtracting the corpus's mean vector "
            f"(the plain cosine is {ex.plain_cosine:.4f}). It keeps only what this pair shares beyond the direction "
            "every sentence of the corpus shares."
        )
    if ex.method == "decomposition":
        st.caption(
            "Every term is (output vector of token i of A) · (output vector of token j of B), scaled so the terms "
            "sum to the cosine. The output vectors are contextual: each has already mixed in its whole sentence."
        )
    else:
        base_a, base_b = ex.baseline
        st.caption(
            f"Each token's share of the change from the baseline (its words removed, special tokens kept) to the text: "
            f"A's scores sum to {ex.sum_a:+.4f} ≈ cosine − {base_a:.4f}, "
            f"B's to {ex.sum_b:+.4f} ≈ cosine − {base_b:.4f}."
        )
    rows = [("text A", ex.tokens_a, ex.scores_a), ("text B", ex.tokens_b, ex.scores_b)]
    ui.plotly(
        figures.shaded_tokens(rows, title="Contribution of each token (red: brings the texts together)"),
        key=f"{key}_tokens",
        filename="why_tokens",
    )
    if ex.pairs is not None:
        ui.plotly(
            figures.pair_matrix(ex.pairs, ex.tokens_a, ex.tokens_b, title=f"Token × token terms (sum = {ex.sum_a:.4f})"),
            key=f"{key}_pairs",
            filename="why_pairs",
        )
    frame = tables.token_scores(rows, [np.asarray(ex.special_a), np.asarray(ex.special_b)])
    st.download_button(
        "Token scores (CSV)", tables.csv_bytes(frame), "token_scores.csv", "text/csv", key=f"{key}_csv",
        on_click="ignore",
    )
