"""Encoder vs causal decoder: masks, the same encoder under two masks, the "bank" probe, a real decoder."""

import streamlit as st

from components import resources, ui
from components.masks import compare as masks_compare
from components.masks import inside, views
from encoderscope.tokens import display_tokens

DEFAULT_TEXT = "The bank was steep and muddy near the river."
PROBE_A = "The bank was steep and muddy near the river."
PROBE_B = "The bank was closed for the holiday weekend."
MAX_TOKENS = 128  # the gallery and side-by-side maps stay readable up to here

st.title("🎭 Encoder vs decoder")
st.caption(
    "An encoder lets every token see the whole input; a decoder lets each token see only what came before. "
    "Here you can see the masks, run the same encoder under both, and compare with a real causal language model."
)

left, right = st.columns([2, 1])
with right:
    enc_ref, enc_rev = ui.model_picker("encoder", key="model")
    dec_ref, dec_rev = ui.model_picker("decoder", key="decoder")
with left:
    if "mask_text" not in st.session_state:
        st.session_state.mask_text = ui.query_str("text", DEFAULT_TEXT)
    raw = st.text_area("Text", key="mask_text", height=80)
    partner_raw = st.text_input(
        "Second sentence (cross-attention rows and the padded batch)", "It was closed.", key="partner"
    )
text, notices = ui.clean_text(raw, max_chars=2_000)
partner, partner_notices = ui.clean_text(partner_raw, max_chars=2_000)
for notice in notices + partner_notices:
    ui.user_warning(notice)
if not text.strip():
    st.info("Type a sentence above to see its masks.")
    st.stop()
ui.share_texts(text=text)

encoder = ui.load_model("encoder", enc_ref, enc_rev)
if encoder is None:
    st.stop()
with ui.guard("run the encoder on this text") as run:
    runs = resources.masked_runs(enc_ref, enc_rev, text, MAX_TOKENS)
if run.failed:
    st.stop()
tokens = display_tokens(runs["bidirectional"].tokens)
if len(encoder.tokenizer(text)["input_ids"]) > MAX_TOKENS:
    ui.user_warning(f"The text is longer than {MAX_TOKENS} tokens; this page uses the first {MAX_TOKENS} only.")
partner_tokens = display_tokens(encoder.tokenizer.tokenize(partner) if partner.strip() else ["[empty]"])[:MAX_TOKENS]
# In the padded batch the second sentence carries the same special tokens as the first.
partner_ids = encoder.tokenizer(partner, truncation=True, max_length=MAX_TOKENS)["input_ids"]
partner_batch = display_tokens(encoder.tokenizer.convert_ids_to_tokens(partner_ids))

st.header("1 · Mask gallery")
st.caption("Coloured = the row token may attend to the column token; grey = blocked.")
views.gallery(tokens, partner_tokens, partner_batch)

st.header("2 · The same encoder under two masks")
trained_causal = runs["bidirectional"].trained_causal
st.caption(
    f"{ui.escape_markdown(encoder.name)}, run twice: "
    + (
        "with its own causal mask (it was trained left to right, like CLIP's text tower), and with an all-ones "
        "4-D mask that lets every token see the whole text."
        if trained_causal
        else "with its normal bidirectional mask, and with a causal mask (a 4-D additive mask with −∞ above the "
        "diagonal)."
    )
)
views.two_masks(runs, tokens, encoder.num_layers, encoder.num_heads)

st.header("3 · Context probe: which bank?")
st.caption(
    "Two sentences that start the same way and then diverge. Does the shared beginning already know "
    "how the sentence ends?"
)
c1, c2, c3 = st.columns([3, 3, 1])
probe_a, na = ui.clean_text(c1.text_input("Sentence A", PROBE_A, key="probe_a"), max_chars=2_000)
probe_b, nb = ui.clean_text(c2.text_input("Sentence B", PROBE_B, key="probe_b"), max_chars=2_000)
word = c3.text_input("Target word", "bank", key="probe_word", max_chars=50)
if not probe_a.strip() or not probe_b.strip():
    st.info("Type both sentences to run the probe.")
else:
    with ui.guard("run the probe on these sentences"):
        views.context_probe(enc_ref, enc_rev, probe_a, probe_b, word)

st.header("4 · A real causal decoder, side by side")
decoder = ui.load_model("decoder", dec_ref, dec_rev)
if decoder is None:
    st.info("The encoder sections above work without a decoder.")
    st.stop()
with ui.guard("run the decoder on this text") as run:
    dec_res, predictions = resources.decoder_view(dec_ref, dec_rev, text, MAX_TOKENS)
if run.failed:
    st.stop()
if dec_res.truncated:
    ui.user_warning(
        f"For the decoder the text is {dec_res.n_input_tokens} tokens long; the attention maps show the "
        f"first {MAX_TOKENS}, the next-token guess reads the last {min(decoder.max_length, dec_res.n_input_tokens)}."
    )
views.decoder_side_by_side(runs["causal" if trained_causal else "bidirectional"], encoder.name, dec_res, decoder, predictions)

st.header("5 · Inside the decoder")
st.caption(
    "When does the decoder know its answer, and which words made it? The logit lens reads every layer's guess; "
    "integrated gradients attribute the final guess to the input tokens."
)
# One view at a time (tabs would run integrated gradients for the hidden view on every new text, for nobody).
ui.one_view(
    {
        "Logit lens": lambda: inside.logit_lens(dec_ref, dec_rev, text, MAX_TOKENS),
        "Which tokens made the guess?": lambda: inside.token_attribution(dec_ref, dec_rev, text),
    },
    key="inside_view",
)

st.header("6 · Encoder vs decoder, measured")
st.caption("The same texts through both models: how alike is every encoder layer to every decoder layer?")
masks_compare.section(enc_ref, enc_rev, dec_ref, dec_rev)
