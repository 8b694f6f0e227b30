"""Benchmark: the bundled decoder (GGUF load, cached load, forward) and the masks page rerun. Prints JSON.

Usage: python bench/decoder.py [--runs 5] [--threads N] [--quick]   (--quick: 16 tokens only, 1 run)

cold_gguf_load_s: GGUF -> fp32 model in a fresh process, imports included (what the first start pays, plus
  cache_write_s); one run: only the first conversion is cold;
cached_load_s: load_pretrained from the converted folder in `runs` fresh processes (with_imports: + importing
  torch/transformers);
forward_with_attentions_ms: {tokens: ms} for SmolLM2 with output_attentions;
masks_compute_all_32_tokens_ms: every array and figure of the page from scratch, no Streamlit caches;
masks_page_rerun_32_tokens: the real page under AppTest, models cached: a new text, and a moved slider.
Every median comes from `runs` timed runs (after one warm-up call in this process); *_min_ms is the fastest.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import plotly.io as pio
import torch
from _common import ROOT, arguments, emit, machine, median_time, ms, parse

import encoderscope as es
from encoderscope import decoder, figures, masks

COLD_LOAD = (
    "import time, sys; from pathlib import Path; t = time.perf_counter();"
    "from encoderscope import gguf_cache, models; g = models.bundled_decoder_gguf();"
    "tok, m = gguf_cache.load_gguf(g); t1 = time.perf_counter(); gguf_cache.convert(g, Path(sys.argv[1]), (tok, m));"
    "print(t1 - t, time.perf_counter() - t1)"
)
WARM_LOAD = (  # prints (imports + load, load alone) in seconds
    "import time, sys; t = time.perf_counter(); import transformers, torch; from encoderscope import models;"
    "t1 = time.perf_counter(); r = models.ModelRef('local', sys.argv[1], 'x');"
    "models.load_pretrained(r, sys.argv[1], 'decoder'); t2 = time.perf_counter(); print(t2 - t, t2 - t1)"
)


def text_of(tokenizer, n: int, shift: int = 0) -> str:
    """About `n` tokens of plain English (`shift` rotates the words, for distinct texts of the same length)."""
    words = ("the bank of the river was steep and muddy so we went fishing there on a quiet morning " * 40).split()
    words = words[shift:] + words[:shift]
    ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"][:n]
    return tokenizer.decode(ids, skip_special_tokens=True)


def masks_rerun(enc, dec, text: str) -> int:
    """Everything the masks page computes for a new text (both models loaded); returns figure JSON bytes."""
    runs = {m: masks.run(enc, text, m, 128) for m in masks.MASKS}
    tokens = runs["bidirectional"].tokens
    T = len(tokens)
    probe = masks.context_probe(
        enc, "The bank was steep and muddy near the river.", "The bank was closed for the holiday weekend."
    )
    dec_res, preds = decoder.attention_and_next_tokens(dec, text, 128)
    figs = [
        figures.mask_figure(m, tokens, tokens, "m")
        for m in (masks.bidirectional(T), masks.causal(T), masks.prefix_lm(T, T // 2))
    ]
    figs += [figures.mask_figure(masks.cross_attention(5, T), tokens[:5], tokens, "x")]
    figs += [figures.mask_figure(p, tokens, tokens, "p") for p in masks.padding([T, 5])]
    figs += [
        figures.masked_attention_figure(runs["bidirectional"].weights[0, 0], tokens, "b"),
        figures.masked_attention_figure(runs["causal"].weights[0, 0], tokens, "c", ~masks.causal(T)),
        figures.layer_token_similarity(masks.cosine(runs["bidirectional"].hidden, runs["causal"].hidden), tokens, "s"),
    ]
    figs += [figures.layer_token_similarity(probe.similarity[m], probe.tokens_a, m, probe.diverge) for m in masks.MASKS]
    figs += [
        figures.probe_line({m: probe.similarity[m][:, 2] for m in masks.MASKS}, "bank"),
        figures.masked_attention_figure(runs["bidirectional"].weights[0].mean(0), tokens, "e"),
        figures.masked_attention_figure(dec_res.weights[0, 0], dec_res.tokens, "d", ~masks.causal(len(dec_res.tokens))),
        figures.next_token_bars(preds),
    ]
    return sum(len(pio.to_json(f.to_dict(), validate=False)) for f in figs)


def page_reruns(enc, runs: int) -> dict:
    """The real page under AppTest (both models cached in st.cache_resource): median ms per rerun.

    new_text: a new 32-token text (arrays recomputed, models cached); widget: a slider moved (cached arrays).
    On a shared machine the median carries other people's load; the minimum is the machine's own speed.
    """
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "views" / "masks.py"), default_timeout=600)
    at.query_params["text"] = text_of(enc.tokenizer, 30)
    at.run()  # loads both models, fills the caches
    assert not at.exception, [e.value for e in at.exception]
    texts = iter([text_of(enc.tokenizer, 30, shift=i + 1) for i in range(runs + 1)])
    layers = iter([i % enc.num_layers for i in range(1, runs + 2)])

    def new_text():
        at.text_area(key="mask_text").set_value(next(texts)).run()

    def widget():
        at.slider(key="mask_layer").set_value(next(layers)).run()

    new_text_s, new_text_times = median_time(new_text, runs)
    widget_s, _ = median_time(widget, runs)
    result = {"new_text_ms": ms(new_text_s), "widget_ms": ms(widget_s), "new_text_min_ms": ms(min(new_text_times))}
    assert not at.exception, [e.value for e in at.exception]
    result["charts"] = len(at.get("plotly_chart"))
    return result


def main() -> None:
    parser = arguments(__doc__, runs=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parse(parser)
    if args.threads:
        torch.set_num_threads(args.threads)
    out: dict = {"machine": machine(), "runs": args.runs, "quick": args.quick}
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(Path(tmp) / "smollm2")
        gguf_s, write_s = map(
            float, subprocess.check_output([sys.executable, "-c", COLD_LOAD, folder], cwd=ROOT).split()
        )
        out["cold_gguf_load_s"], out["cache_write_s"] = round(gguf_s, 2), round(write_s, 2)
        warm = [
            subprocess.check_output([sys.executable, "-c", WARM_LOAD, folder], cwd=ROOT).split()
            for _ in range(args.runs)
        ]
        out["cached_load_s_with_imports"] = round(statistics.median(float(w[0]) for w in warm), 2)
        out["cached_load_s"] = round(statistics.median(float(w[1]) for w in warm), 2)
        out["cached_load_min_s"] = round(min(float(w[1]) for w in warm), 2)
    enc, dec = es.load_encoder(None), es.load_decoder(None)
    out["forward_with_attentions_ms"], fastest = {}, {}
    for n in (16,) if args.quick else (16, 64, 256):
        enc_ids = dec.tokenizer(text_of(dec.tokenizer, n), return_tensors="pt")

        def forward(ids=enc_ids):
            with torch.inference_mode():
                dec.model(**ids, output_attentions=True)

        n_tokens = str(enc_ids["input_ids"].shape[1])
        median, times = median_time(forward, args.runs)
        out["forward_with_attentions_ms"][n_tokens], fastest[n_tokens] = ms(median), ms(min(times))
    text = text_of(enc.tokenizer, 30)  # 32 tokens with [CLS]/[SEP]
    out["forward_with_attentions_min_ms"] = fastest
    out["masks_rerun_figure_bytes"] = masks_rerun(enc, dec, text)  # also the warm-up call of the timing below
    out["masks_compute_all_32_tokens_ms"] = ms(median_time(lambda: masks_rerun(enc, dec, text), args.runs, False)[0])
    out["masks_page_rerun_32_tokens"] = page_reruns(enc, args.runs)
    emit(out)


if __name__ == "__main__":
    main()
