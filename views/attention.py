"""Attention explorer: every layer and head of an encoder, for the user's own text."""

import streamlit as st

from components import ui
from components.attention import cache, query_key, views

DEFAULT_TEXT = "The bank of the river was steep, so we went fishing from the bank."

st.title("🎯 Attention explorer")
st.caption(
    "An encoder lets every token attend to every other token, left and right. Pick a layer and a head to see "
    "who looks at whom. Everything here is shareable: the URL holds the text, model, layer and head."
)

left, right = st.columns([2, 1])
with right:
    model_ref, revision = ui.model_picker("encoder", key="model")
with left:
    if "text" not in st.session_state:
        st.session_state.text = ui.query_str("text", DEFAULT_TEXT)
        st.session_state.pair = ui.query_str("pair", "")
    raw_text = st.text_area("Text", key="text", height=90)
    with st.expander("Sentence pair (optional)", expanded=bool(st.session_state.pair)):
        raw_pair = st.text_input("Second sentence (B)", key="pair", placeholder="e.g. It was closed on Sunday.")

text, notices = ui.clean_text(raw_text)
pair, pair_notices = ui.clean_text(raw_pair)
for notice in notices + pair_notices:
    ui.user_warning(notice)
if not text.strip():
    st.info("Type a sentence above to see its attention.")
    st.stop()

model = ui.load_model("encoder", model_ref, revision)
if model is None:
    st.stop()

opt1, opt2, opt3 = st.columns(3)
merge = opt1.toggle("Merge word-pieces into words", key="merge",
                    help="Query pieces are averaged and key pieces summed, so rows still sum to 1.")
hide = opt2.toggle("Hide special tokens", key="hide", help="Drops [CLS]/[SEP] and renormalises each row.")
if merge:
    st.caption(
        "Word-pieces merged into words: a word's row is the average of its pieces' rows (as a query), and its "
        "column the sum of its pieces' columns (as a key), so every row still sums to 1."
    )

inputs = views.Inputs(model_ref, revision, text, pair or None, merge, hide)
with ui.guard("run the model on this text") as run, st.spinner("Running the model …"):
    res = cache.shown(*inputs.shown)
if run.failed:
    st.stop()

if res.truncated:
    ui.user_warning(
        f"The input has {res.n_input_tokens:,} tokens; {model.name} reads at most {model.max_length}, "
        "so it was truncated."
    )
direction = "all pairs"
if res.sentence_b_start is not None:
    direction = opt3.radio("Show", list(views.DIRECTIONS), horizontal=True, key="direction",
                           help="A→B keeps only attention from sentence A's tokens to sentence B's.")

L, H = res.num_layers, res.num_heads
# For the default sentence, open on the head that makes the page's point (computed on these weights).
choice = views.chosen_head(res) if text == DEFAULT_TEXT and not pair else None
if "layer" not in st.session_state:
    linked = "layer" in st.query_params or "head" in st.query_params
    start_layer, start_head = (0, 0) if choice is None or linked else choice[:2]
    st.session_state.layer = ui.query_int("layer", start_layer, 0, L - 1)
    head_q = ui.query_str("head", str(start_head), 10)
    st.session_state.head = "mean" if head_q == "mean" else ui.query_int("head", start_head, 0, H - 1)
st.session_state.layer = min(max(int(st.session_state.layer), 0), L - 1)  # a new model may have fewer layers
if st.session_state.get("head", 0) != "mean":
    st.session_state.head = min(max(int(st.session_state.get("head", 0)), 0), H - 1)

layer = ui.index_slider(st, "Layer (0 = first)", L, key="layer")
head = st.session_state.head
ui.sync_query(layer=layer, head=head)
ui.share_texts(text=text, pair=pair)

st.caption(f"{ui.escape_markdown(model.name)} · {L} layers × {H} heads · {len(res.tokens)} tokens")
if choice is not None and (layer, head) == choice[:2]:
    views.chosen_head_caption(choice, L * H)
views.main_heatmap(inputs, res, layer, head, direction)
views.downloads(res, layer, head, direction)

# One view at a time, computed only when shown: opening a text costs one forward pass and one map.
shown = st.radio("View", views.VIEWS, horizontal=True, key="attn_view", label_visibility="collapsed")
if shown == "All heads":
    views.all_heads(inputs)
elif shown == "Rollout":
    views.rollout(inputs, res)
elif shown == "Token focus":
    views.focus(res, "focus_token")
elif shown == "Head summary":
    views.head_summary(inputs)
elif shown == "Query · key":
    with ui.guard("compute queries and keys for this head"):
        query_key.view(model_ref, revision, text, pair or None, layer, head, merge or hide)
