"""The masks page's "Inside the decoder" panel: the logit lens (layers × positions, and the answer's probability
by layer) and which input tokens raise the next token's log-probability."""

from __future__ import annotations

import streamlit as st

from components import faithfulness, ui
from components.masks import cache
from encoderscope import figures, settings
from encoderscope.attribution import tables
from encoderscope.attribution.lens import first_layer_above
from encoderscope.figures.common import escape_hover

LENS_K = 5


def logit_lens(dec_ref: str | None, revision: str | None, text: str, max_tokens: int) -> None:
    """The lens grid, the target's probability by layer, and the lens table as CSV."""
    with ui.guard("read the decoder's layers") as run, st.spinner("Reading every layer …"):
        lens = cache.logit_lens(dec_ref, revision, text, LENS_K, max_tokens)
    if run.failed:
        return
    for note in lens.notes:
        st.caption(ui.escape_markdown(note))
    ui.plotly(
        figures.lens_grid(lens.top_tokens, lens.top_probs, lens.tokens, title="Logit lens: each layer's top guess"),
        key="lens_grid",
        filename="logit_lens",
    )
    st.caption(
        "Each cell: the token the model would predict next if it stopped at that layer (its hidden state through "
        "the final norm and the unembedding), coloured by probability; hover for the top 5. Row 0 is the "
        "embedding output; the last row is the model's real prediction."
    )
    ui.plotly(figures.target_prob_line(lens.target_prob, lens.target), key="lens_target", filename="lens_target")
    first = first_layer_above(lens.target_prob, 0.5)
    st.caption(
        f"The probability of the model's final answer {ui.code_span(repr(lens.target))} after the last token, read "
        "at every layer: "
        + (f"it passes 50% at layer {first}." if first is not None else "it never passes 50%.")
    )
    frame = tables.lens_table(lens.tokens, lens.top_tokens, lens.top_probs)
    st.download_button(
        "Lens table (CSV)", tables.csv_bytes(frame), "logit_lens.csv", "text/csv", key="lens_csv", on_click="ignore"
    )


def token_attribution(dec_ref: str | None, revision: str | None, text: str) -> None:
    """Controls (target token, steps), the shaded tokens, and the scores as CSV. The controls keep their values
    while the page shows its other view (persist_state)."""
    top = settings.get().attribution_max_steps
    keep = dict(persist_state="page")
    c1, c2 = st.columns([2, 1])
    target = c1.text_input(
        "Next token to explain (empty = the model's own guess)", "", key="attr_target", max_chars=50, **keep,
        help="Type it with its leading space, e.g. ' Paris'. A word of several tokens is explained by its first.",
    )
    steps = int(c2.slider("Steps (integrated gradients)", 2, max(top, 3), min(32, top), key="attr_steps",
                          help=f"More steps, smaller integration error; at most {top} on this server.", **keep))
    target = ui.clean_text(target, max_chars=50)[0]
    if not st.toggle("Run integrated gradients", key="attr_run", **keep,
                     help="A backward pass per step through the decoder: a few seconds, so it runs on request."):
        st.caption("Switch it on to see which tokens made the decoder's guess.")
        return
    with ui.guard("attribute the next token") as run, st.spinner("Integrated gradients …"):
        ta = cache.token_attribution(dec_ref, revision, text, target, steps)
    if run.failed:
        return
    m1, m2, m3 = st.columns(3)
    m1.metric("Next token", repr(ta.target))
    m2.metric("log p (text → baseline)", f"{ta.logprob:.2f} ← {ta.baseline_logprob:.2f}")
    m3.metric("Completeness error", f"{ta.completeness:.2%}")
    for note in ta.notes:
        st.caption(ui.escape_markdown(note))
    rows = [("text", ta.tokens, ta.scores)]
    ui.plotly(
        figures.shaded_tokens(rows, title=f"Which tokens raise log p({escape_hover(repr(ta.target))})", value_name="Δ log p"),
        key="attr_tokens",
        filename="token_attribution",
    )
    st.caption(
        f"Integrated gradients ({ta.steps} steps) from a baseline with every word replaced by the pad token: red "
        f"tokens raise the log-probability of {ui.code_span(repr(ta.target))}, blue ones lower it. The scores sum to "
        f"{ta.total:+.3f}, the change {ta.logprob - ta.baseline_logprob:+.3f} up to the completeness error."
    )
    frame = tables.token_scores(rows, [ta.special])
    st.download_button(
        "Token scores (CSV)", tables.csv_bytes(frame), "next_token_scores.csv", "text/csv", key="attr_csv",
        on_click="ignore",
    )
    faithfulness.next_token_panel(dec_ref, revision, (text, target, steps), text, ta, key="attr")
