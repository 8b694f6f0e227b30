"""Sections of the encoder-vs-decoder page. Each draws one self-contained part."""

from __future__ import annotations

import numpy as np
import streamlit as st

from components import resources, ui
from encoderscope import figures, masks
from encoderscope.figures.common import escape_hover
from encoderscope.tokens import display_tokens


def gallery(tokens: list[str], partner: list[str], batch: list[str] | None = None) -> None:
    """The five masks for the user's tokens; `partner` is a second (shorter/longer) tokenised sentence.

    `batch`: the second sentence as it sits in a padded batch (with its special tokens); default `partner`.
    """
    batch = partner if batch is None else batch
    T = len(tokens)
    start = ui.query_int("prefix", min(max(T // 2, 1), T), 0, T)  # out-of-range links are clamped, with a notice
    prefix = st.slider(
        "Prefix length for the prefix-LM mask",
        0,
        T,
        start,
        key="prefix",
        help="Tokens inside the prefix see each other both ways; later tokens see only leftwards.",
    )
    ui.sync_query(prefix=prefix)
    cards = [
        (
            masks.bidirectional(T),
            tokens,
            tokens,
            "Bidirectional (encoder)",
            "Every token sees every token, left and right: BERT, T5's encoder, CLIP's image encoder.",
        ),
        (
            masks.causal(T),
            tokens,
            tokens,
            "Causal (decoder)",
            "Token i sees tokens 0…i only: GPT, Llama, SmolLM, and CLIP's text encoder. This is what makes "
            "next-token prediction honest.",
        ),
        (
            masks.prefix_lm(T, prefix),
            tokens,
            tokens,
            f"Prefix-LM (prefix = {prefix})",
            "Bidirectional over the prefix (the prompt), causal after it: UniLM, T5's prefix-LM objective.",
        ),
        (
            masks.cross_attention(len(partner), T),
            partner,
            tokens,
            "Cross-attention (decoder × encoder)",
            "Each decoder token (rows: the second sentence) may look at every encoder token (columns).",
        ),
    ]
    cols = st.columns(2)
    for i, (mask, rows, columns, title, caption) in enumerate(cards):
        with cols[i % 2]:
            cross = "Cross" in title
            ui.plotly(
                figures.mask_figure(
                    mask,
                    rows,
                    columns,
                    title,
                    row_title="decoder (from)" if cross else "query (from)",
                    col_title="encoder (to)" if cross else "key (to)",
                ),
                key=f"mask_{i}",
                filename=f"mask_{i}",
            )
            st.caption(caption)
    lengths = [T, len(batch)]
    pad = masks.padding(lengths)
    width = max(lengths)
    padded = [tokens + ["[PAD]"] * (width - T), batch + ["[PAD]"] * (width - len(batch))]
    cols = st.columns(2)
    for b in range(2):
        with cols[b]:
            ui.plotly(
                figures.mask_figure(pad[b], padded[b], padded[b], f"Padding mask, sentence {b + 1} of the batch"),
                key=f"mask_pad_{b}",
                filename=f"mask_padding_{b}",
            )
    st.caption(
        f"A batch holds sentences of different lengths ({lengths[0]} and {lengths[1]} tokens), so the shorter one "
        "is padded with [PAD] tokens that no real token may attend to."
    )


def two_masks(runs: dict, tokens: list[str], num_layers: int, num_heads: int) -> None:
    """The same encoder run with its bidirectional mask and with a causal mask."""
    c1, c2 = st.columns(2)
    layer = ui.index_slider(c1, "Layer", num_layers, key="mask_layer")
    head = ui.index_slider(c2, "Head", num_heads, key="mask_head")
    T = len(tokens)
    # A causally trained encoder (CLIP's text tower): the bidirectional run is the experiment.
    trained_causal = runs["bidirectional"].trained_causal
    left, right = st.columns(2)
    with left:
        bi_title = "Bidirectional (experiment)" if trained_causal else "Bidirectional"
        ui.plotly(
            figures.masked_attention_figure(
                runs["bidirectional"].weights[layer, head], tokens, f"{bi_title}: layer {layer}, head {head}"
            ),
            key="two_masks_bi",
            filename="encoder_bidirectional",
        )
    with right:
        blocked = ~masks.causal(T)
        ui.plotly(
            figures.masked_attention_figure(
                runs["causal"].weights[layer, head], tokens, f"Causal mask: layer {layer}, head {head}", blocked=blocked
            ),
            key="two_masks_causal",
            filename="encoder_causal",
        )
    sim = masks.cosine(runs["bidirectional"].hidden, runs["causal"].hidden)  # [L+1, T]
    ui.plotly(
        figures.layer_token_similarity(sim, tokens, "Each token's hidden state: bidirectional vs causal"),
        key="two_masks_sim",
        filename="mask_similarity",
    )
    st.caption(
        "Cosine similarity between a token's hidden state under the two masks, per layer (1 = unchanged). "
        "The last token sees every token under both masks: it is the one token unchanged after layer 1, and later "
        "layers drift only because the tokens it reads from changed. Early tokens lose most context. "
        + (
            "Caveat: this text encoder was trained causally (like CLIP's, which conditions Stable Diffusion, it "
            "reads left to right), so the bidirectional run, with a real all-ones mask, is the experiment: a model "
            "that never learned to use right context is shown it."
            if trained_causal
            else "Caveat: these weights were trained bidirectionally, so the causal run is an experiment on a model "
            "that never learned to work without right context, not a trained decoder."
        )
    )


def context_probe(model_ref, revision, text_a: str, text_b: str, word: str) -> None:
    probe = resources.context_probe(model_ref, revision, text_a, text_b)
    tokens = display_tokens(probe.tokens_a[: probe.similarity["causal"].shape[1]])
    if probe.identical:
        ui.user_warning("The two sentences are identical, so every similarity is 1. Change one of them.")
    elif probe.diverge <= 1:
        ui.user_warning(
            "The sentences share no beginning (they differ from the first word), so even the causal "
            "mask cannot keep anything identical. Try two sentences that start the same way."
        )
    elif len(probe.tokens_a) != len(probe.tokens_b):
        st.caption(
            f"The sentences have different lengths ({len(probe.tokens_a)} and {len(probe.tokens_b)} tokens): "
            "positions are compared up to the shorter one."
        )
    if not probe.identical and probe.diverge < len(tokens):
        st.markdown(
            f"**First differing token:** position {probe.diverge}: "
            f"{ui.code_span(display_tokens(probe.tokens_a)[probe.diverge].strip())} vs "
            f"{ui.code_span(display_tokens(probe.tokens_b)[probe.diverge].strip())}"
        )
    low = float(min(np.nanmin(v) for v in probe.similarity.values()))
    cols = st.columns(2)
    for col, name in zip(cols, masks.MASKS, strict=True):
        with col:
            ui.plotly(
                figures.layer_token_similarity(
                    probe.similarity[name], tokens, f"{name.capitalize()} mask", marker=probe.diverge, zmin=low
                ),
                key=f"probe_{name}",
                filename=f"probe_{name}",
            )
    st.caption(
        "Cosine similarity between sentence A's and sentence B's hidden state at the same position. Left of the "
        "dashed line the two inputs are identical. Under the causal mask those tokens cannot see what comes "
        "later, so their states are identical (cosine 1.00000). Under the bidirectional mask they already differ: "
        "“bank” knows whether a river or a holiday follows."
    )
    index_a = masks.find_word(probe.tokens_a, word)
    index_b = masks.find_word(probe.tokens_b, word)
    if not word.strip():
        st.info("Type a target word to follow it across layers.")
    elif index_a is None or index_b is None:
        ui.user_warning(f"The word {word!r} does not appear in both sentences; pick a word they share.")
    elif index_a != index_b:
        ui.user_warning(
            f"{word!r} sits at different positions in the two sentences ({index_a} and {index_b}); "
            "the probe compares the same position, so pick a word in the shared beginning."
        )
    elif index_a >= probe.similarity["causal"].shape[1]:
        ui.user_warning(f"{word!r} lies beyond the shorter sentence.")
    else:
        curves = {m: probe.similarity[m][:, index_a] for m in masks.MASKS}
        ui.plotly(figures.probe_line(curves, word), key="probe_line", filename="probe_word")
        gap = 1 - curves["bidirectional"][-1]
        st.caption(
            f"Last layer: causal cosine {curves['causal'][-1]:.5f}, bidirectional {curves['bidirectional'][-1]:.5f} "
            f"({gap:.3f} below 1). Only the bidirectional encoder can tell which “{ui.escape_markdown(word)}” "
            "this is before reading on."
        )


def _short(name: str) -> str:
    """A model name short enough for a chart title: no "(bundled)" suffix, no hub owner."""
    return escape_hover(name.removesuffix(" (bundled)").rsplit("/", 1)[-1][:40])


def decoder_side_by_side(enc_run, enc_name: str, dec_res, dec, predictions) -> None:
    """The encoder's and the decoder's attention for the same text, plus the decoder's next-token guess.

    `enc_run`: the encoder's bidirectional `masks.MaskedRun` (weights `[L, H, T, T]`); `dec_res`: AttentionResult.
    """
    c1, c2 = st.columns(2)
    dec_layer = ui.index_slider(c1, "Decoder layer", dec_res.num_layers, key="dec_layer")
    dec_head = ui.index_slider(c2, "Decoder head", dec_res.num_heads, key="dec_head")
    left, right = st.columns(2)
    with left:
        n_enc = enc_run.weights.shape[0]  # the encoder layer at the same relative depth
        layer = round(dec_layer * (n_enc - 1) / max(dec_res.num_layers - 1, 1))
        ui.plotly(
            figures.masked_attention_figure(
                enc_run.weights[layer].mean(0),
                enc_run.tokens,
                f"Encoder ({_short(enc_name)}), layer {layer}, mean of heads",
            ),
            key="enc_side",
            filename="encoder_attention",
        )
    with right:
        T = len(dec_res.tokens)
        ui.plotly(
            figures.masked_attention_figure(
                dec_res.weights[dec_layer, dec_head],
                dec_res.tokens,
                f"Decoder ({_short(dec.name)}), layer {dec_layer}, head {dec_head}",
                blocked=~masks.causal(T),
            ),
            key="dec_side",
            filename="decoder_attention",
        )
    kv = getattr(dec.config, "num_key_value_heads", dec.num_heads) or dec.num_heads
    note = f"{ui.escape_markdown(dec.name)}: {dec.num_layers} layers × {dec.num_heads} query heads." + (
        f" Grouped-query attention: {kv} key/value heads, each shared by {dec.num_heads // kv} query heads, "
        "so heads in a group read the same keys but weigh them differently."
        if kv < dec.num_heads
        else ""
    )
    st.caption(
        note + f" The decoder's upper triangle is exactly zero: no token sees its future. The encoder map shows "
        f"layer {layer} of {n_enc}, at the same relative depth as decoder layer {dec_layer} of {dec_res.num_layers}."
    )
    st.markdown("**Next-token prediction** (what the causal mask is for)")
    ui.plotly(figures.next_token_bars(predictions), key="next_tokens", filename="next_tokens")
    st.caption("The decoder's top 5 guesses for the token after your text, with probabilities.")
