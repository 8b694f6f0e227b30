"""Benchmark: the attention page's server-side work at 16/64/256/512 tokens. Prints one JSON object.

For each model and length: the bare forward pass with attentions; the first rerun of the page before the canvas
heatmaps (`plotly_rerun`: extraction, head stats, rollout, every Plotly figure built and serialised as Streamlit
does, and its JSON bytes); and what the page's first rerun computes now (`rerun`: extraction, the shown layer
quantised, the first payload (selected head), the layer's store payload and the all-heads thumbnails; head
statistics, rollout and focus wait for their view), with the bytes of its payloads.
Models: the bundled MiniLM (real weights) and a bert-base-sized BertModel (random weights: timing only).
real_page: the attention page itself under AppTest (Streamlit caches and all), for a new text and a layer change:
MiniLM at 64 tokens, bert-base size at 512 tokens.
Every *_ms figure is the median of `runs` timed runs after one warm-up call.
Usage: python bench/attention.py [--runs 5] [--quick]   (--quick: MiniLM only, 16 and 64 tokens, 1 run)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import plotly.io as pio
import torch
from _common import ROOT, arguments, emit, machine, median_time, ms, parse, progress

import encoderscope as es
from components.attention import payloads
from encoderscope import figures, models
from encoderscope.attention_maps import flag_heads, head_stats, rollout, token_focus

LENGTHS = (16, 64, 256, 512)
QUICK_LENGTHS = (16, 64)


def text_of(tokenizer, n_tokens: int, shift: int = 0) -> str:
    """A natural-looking text that tokenizes to exactly n_tokens (with [CLS] and [SEP]); `shift` varies it."""
    rng = np.random.default_rng(shift)
    words = "the bank of a river was steep and muddy so we went fishing there on sunday morning".split()
    text = " ".join(rng.choice(words, size=n_tokens * 2))
    ids = tokenizer(text, truncation=True, max_length=n_tokens)["input_ids"]
    return tokenizer.decode(ids, skip_special_tokens=True)


def page_rerun(model, text: str) -> int:
    """Everything the attention page computes for a new text, with the canvas heatmaps; returns the bytes of
    the payloads it sends (first map, the layer's store, the all-heads grid)."""
    res = es.attention(model, text)
    q = payloads.layer_quantised(res.weights[0])
    sent = [
        payloads.main_map(res, q, 0, "0", "id", "all"),
        payloads.layer_store(q, res.num_heads, "id"),
        payloads.grid(payloads.grid_thumbnails(res.weights)),
    ]
    return sum(len(b) for b in sent)


def plotly_rerun(model, text: str) -> int:
    """Everything the attention page computed for a new text with Plotly figures (before the canvas heatmaps);
    returns the figure JSON bytes."""
    res = es.attention(model, text)
    stats = flag_heads(head_stats(res), len(res.tokens))
    roll = rollout(res)
    figs = [
        figures.attention_heatmap(res.weights[0, 0], res.tokens, 0, 0),
        figures.head_grid(res.weights),
        figures.rollout_heatmap(roll, res.tokens),
        figures.token_focus_heatmap(token_focus(res, 1), res.tokens, 1),
        figures.head_stat_heatmap(stats, "prev"),
    ]
    # Streamlit calls fig.to_dict() and plotly.io.to_json(validate=False) for every chart.
    return sum(len(pio.to_json(f.to_dict(), validate=False)) for f in figs)


def forward(model, text: str) -> None:
    enc = model.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        model.model(**enc, output_attentions=True)


def bert_base():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bundled = es.load_encoder(None)
    model = BertModel(BertConfig(attn_implementation="eager")).eval()
    return models.LoadedModel(model, bundled.tokenizer, "bert-base (random)", "encoder", "local")


def bert_base_folder(folder: Path) -> str:
    """The random bert-base-sized model saved as a local model folder (bundled tokenizer), for the real page."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig()).save_pretrained(folder)
    src = models.bundled_encoder_path()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).write_bytes((src / name).read_bytes())
    return str(folder)


def real_page(model_ref: str | None, tokenizer, n_tokens: int, runs: int) -> dict:
    """The attention page itself under AppTest (model cached): median ms for a new text and for a layer change.

    Every timed rerun gets a text it has not seen (the warm-up call included), so none is a cache hit.
    """
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "views" / "attention.py"), default_timeout=600)
    if model_ref:
        at.query_params["model"] = model_ref
    at.query_params["text"] = text_of(tokenizer, n_tokens)
    at.run()  # loads the model
    assert not at.exception, [e.value for e in at.exception]
    texts = iter(text_of(tokenizer, n_tokens, shift=i + 1) for i in range(runs + 1))
    layers = iter(i % 6 for i in range(1, runs + 2))
    new_text, _ = median_time(lambda: at.text_area(key="text").set_value(next(texts)).run(), runs)
    layer, _ = median_time(lambda: at.slider(key="layer").set_value(next(layers)).run(), runs)
    assert not at.exception, [e.value for e in at.exception]
    return {"tokens": n_tokens, "new_text_ms": ms(new_text), "layer_change_ms": ms(layer),
            "charts": len(at.get("plotly_chart"))}


def main() -> None:
    args = parse(arguments(__doc__, runs=5))
    out: dict = {"machine": machine(), "runs": args.runs, "quick": args.quick, "results": []}
    bundled = es.load_encoder(None)
    out["real_page"] = {"MiniLM": real_page(None, bundled.tokenizer, 64, args.runs)}
    if not args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            folder = bert_base_folder(Path(tmp))
            out["real_page"]["bert-base (random)"] = real_page(folder, bundled.tokenizer, 512, args.runs)
    progress(out["real_page"])
    for model in (bundled,) if args.quick else (bundled, bert_base()):
        for n in QUICK_LENGTHS if args.quick else LENGTHS:
            text = text_of(model.tokenizer, n)
            fwd, _ = median_time(lambda m=model, t=text: forward(m, t), args.runs)
            payload = page_rerun(model, text)  # the payload bytes; also the warm-up call of the timing below
            figure_bytes = plotly_rerun(model, text)
            rerun, _ = median_time(lambda m=model, t=text: page_rerun(m, t), args.runs, warm=False)
            old, _ = median_time(lambda m=model, t=text: plotly_rerun(m, t), args.runs, warm=False)
            out["results"].append({
                "model": model.name, "layers": model.num_layers, "heads": model.num_heads, "tokens": n,
                "forward_ms": ms(fwd), "rerun_ms": ms(rerun), "overhead_x": round(rerun / fwd, 2),
                "payload_bytes": payload, "plotly_rerun_ms": ms(old), "plotly_overhead_x": round(old / fwd, 2),
                "figure_bytes": figure_bytes,
            })
            progress(out["results"][-1])
    emit(out)


if __name__ == "__main__":
    main()
