""""Can I trust this explanation?": the deletion test beside every "why" view.

A toggle (off on page open: nothing is computed until the user asks), then the deletion curve against the random
band (`figures.deletion_chart`), one sentence (`es.faithfulness.describe`) and the curves as CSV. The curves are
cached (st.cache_data, keyed on everything that decides them; the explanation itself is passed unhashed as `_ex`)
and each is one job on the compute pool.

    faithfulness.similarity_panel(model_ref, revision, key_parts, ex, key="emb_why")
    faithfulness.image_panel(kind, ref, revision, key_parts, rel, key="v_why", compare=True)
    faithfulness.next_token_panel(dec_ref, revision, key_parts, text, ta, key="attr")
"""

from __future__ import annotations

from collections.abc import Hashable

import streamlit as st

import encoderscope as es
from components import pool, resources, ui
from encoderscope import figures
from encoderscope.attribution import tables

SIMILARITY_STEPS, SIMILARITY_SEEDS = 10, 5
IMAGE_STEPS, IMAGE_SEEDS = 14, 3
TOKEN_STEPS, TOKEN_SEEDS = 10, 5


@st.cache_data(max_entries=32, show_spinner=False)
def similarity_curves(model_ref: str | None, revision: str | None, key: Hashable, side: str, _ex):
    """`es.faithfulness.similarity` of the explanation `_ex` (identified by `key`: texts, method, steps, centre)."""
    model = resources.encoder(model_ref, revision)
    return pool.run("deletion test", (model_ref, revision, key, side), es.faithfulness.similarity, model, _ex,
                    side=side, steps=SIMILARITY_STEPS, seeds=SIMILARITY_SEEDS)


@st.cache_data(max_entries=32, show_spinner=False)
def image_curves(kind: str, ref: str, revision: str | None, key: Hashable, compare: bool, _rel):
    """{method: Curves}: relevance alone, or (compare) relevance, raw [CLS] attention and rollout on one picture.
    kind: "classifier" or "clip"."""
    from components.vision import cache as vision_cache  # not imported by the text pages

    model = vision_cache.clip_model(ref, revision) if kind == "clip" else vision_cache.image_encoder(ref, revision)
    job = (kind, ref, revision, key, compare)
    if compare:
        return pool.run("deletion test", job, es.faithfulness.image_methods, model, _rel, IMAGE_STEPS, IMAGE_SEEDS)
    curve = pool.run("deletion test", job, es.faithfulness.image, model, _rel.image, _rel, IMAGE_STEPS, IMAGE_SEEDS)
    return {"relevance": curve}


@st.cache_data(max_entries=16, show_spinner=False)
def next_token_curves(dec_ref: str | None, revision: str | None, key: Hashable, text: str, _ta):
    model = resources.decoder(dec_ref, revision)
    return pool.run("deletion test", (dec_ref, revision, key), es.faithfulness.next_token, model, text, _ta,
                    steps=TOKEN_STEPS, seeds=TOKEN_SEEDS)


def asked(key: str, what: str) -> bool:
    """The toggle that starts a deletion test (off by default, so opening a page computes nothing). It keeps its
    value while the page shows another view (persist_state), as the panel's other widgets do."""
    on = st.toggle(
        "Can I trust this explanation? (deletion test)", key=f"{key}_faith", persist_state="page",
        help=f"Removes the {what} this explanation ranks highest, a few at a time, and re-runs the model: a faithful "
        "explanation makes the value fall faster than random removal does. A few seconds, so it runs on request.",
    )
    return bool(on)


def draw(found: dict, key: str, subject: str = "this explanation", filename: str = "deletion_test") -> None:
    """The chart (each curve, the shared random band), the sentence for each curve, the CSV of every curve."""
    first = next(iter(found.values()))
    names = {name: es.faithfulness.METHOD_LABELS.get(name, name) for name in found}
    lines = {names[n]: (c.deletion, c.area_deletion) for n, c in found.items()}
    units = "tokens" if first.unit == "token" else "patches"
    fig = figures.deletion_chart(first.counts, lines, first.random, first.random_sd, first.area_random,
                                 first.measure, first.unit, title=f"Deletion test: the {first.measure} as {units} go")
    ui.plotly(fig, key=f"{key}_curve", filename=filename)
    for name, c in found.items():
        who = subject if len(found) == 1 else names[name]
        st.caption(ui.escape_markdown(es.faithfulness.describe(c, who)))
    c = first
    st.caption(
        f"Insertion (from nothing, highest-ranked first): area {c.area_insertion:.3f}, higher is better. ERASER "
        f"comprehensiveness {c.comprehensiveness:.3f} (higher is better), sufficiency {c.sufficiency:.3f} (lower is "
        f"better). {c.seeds} random orders; removal: {ui.escape_markdown(c.removal)}."
    )
    st.download_button(
        "Deletion curves (CSV)", tables.csv_bytes(es.faithfulness.table(found)), f"{filename}.csv", "text/csv",
        key=f"{key}_faith_csv", on_click="ignore",
    )


def similarity_panel(model_ref, revision, key_parts: Hashable, ex, key: str) -> None:
    """The deletion test of a similarity explanation, on the side the user picks (text B by default)."""
    if not asked(key, "tokens"):
        return
    side = st.radio("Remove tokens of", ["b", "a"], format_func=lambda s: f"text {s.upper()}", horizontal=True,
                    key=f"{key}_faith_side", persist_state="page")
    with ui.guard("run the deletion test") as run, st.spinner("Removing tokens and re-running the model …"):
        found = similarity_curves(model_ref, revision, key_parts, side, ex)
    if not run.failed:
        draw({"explanation": found}, key, filename="similarity_deletion")


def image_panel(kind: str, ref: str, revision, key_parts: Hashable, rel, key: str, offer_compare: bool) -> None:
    """The deletion test of an image explanation; with `offer_compare`, a toggle adds raw [CLS] attention and
    rollout on the same picture and the same random orders."""
    if not asked(key, "patches"):
        return
    compare = offer_compare and st.toggle(
        "Compare with raw [CLS] attention and rollout", key=f"{key}_faith_compare", persist_state="page",
        help="The same test for the two attention maps, on the same picture and random orders.",
    )
    with ui.guard("run the deletion test") as run, st.spinner("Blanking patches and re-running the model …"):
        found = image_curves(kind, ref, revision, key_parts, bool(compare), rel)
    if not run.failed:
        draw(found, key, "this relevance map", filename="image_deletion")


def next_token_panel(dec_ref, revision, key_parts: Hashable, text: str, ta, key: str) -> None:
    if not asked(key, "tokens"):
        return
    with ui.guard("run the deletion test") as run, st.spinner("Removing tokens and re-running the decoder …"):
        found = next_token_curves(dec_ref, revision, key_parts, text, ta)
    if not run.failed:
        draw({"explanation": found}, key, filename="next_token_deletion")
