"""The attention page under AppTest: widgets in, figure JSON out, clear messages for bad input."""

import numpy as np
import pytest

from tests.app.conftest import app, array, figures, messages, no_exceptions


@pytest.fixture(scope="module")
def page():
    at = app("attention", {"text": "the bank and the bank"})
    at.run()
    return at


def test_main_heatmap(page):
    no_exceptions(page)
    fig = figures(page)[0]
    trace = fig["data"][0]
    tokens = ["[CLS]", "the", "bank", "and", "the", "bank", "[SEP]"]
    z = array(trace["z"])
    assert z.shape == (7, 7)  # duplicate tokens keep separate rows and columns
    np.testing.assert_allclose(np.nansum(z, axis=1), 1.0, atol=1e-4)
    assert trace["zmin"] == 0 and trace["zmax"] == 1
    assert fig["layout"]["xaxis"]["ticktext"] == tokens
    assert fig["layout"]["xaxis"]["tickvals"] == list(range(7))
    assert len(set(trace["x"])) == 7
    assert "→" in trace["hovertemplate"]
    assert fig["layout"]["title"]["text"] == "Layer 0, head 0"


def test_all_heads_grid_and_other_views(page):
    figs = figures(page)
    grid = figs[1]
    assert grid["layout"]["xaxis"]["ticktext"][-1] == "mean"
    assert len(grid["layout"]["yaxis"]["tickvals"]) == 6  # layers
    assert len(grid["layout"]["xaxis"]["tickvals"]) == 13  # 12 heads + mean
    titles = [f["layout"].get("title", {}).get("text", "") for f in figs]
    assert any("rollout" in t.lower() for t in titles)
    assert any("context" in t for t in titles)  # token focus
    assert len(page.dataframe) >= 1 and len(page.dataframe[0].value) == 72


def test_layer_and_head_change_updates_figure_and_url(page):
    page.slider(key="layer").set_value(4)
    page.select_slider(key="head").set_value(7)
    page.run()
    no_exceptions(page)
    assert figures(page)[0]["layout"]["title"]["text"] == "Layer 4, head 7"
    assert page.query_params["layer"] in ("4", ["4"]) and page.query_params["head"] in ("7", ["7"])


def test_mean_over_heads(page):
    page.select_slider(key="head").set_value("mean").run()
    assert "mean over heads" in figures(page)[0]["layout"]["title"]["text"]


def test_url_restores_view():
    at = app("attention", {"text": "a shared link", "layer": "3", "head": "5"})
    at.run()
    no_exceptions(at)
    assert at.text_area(key="text").value == "a shared link"
    assert figures(at)[0]["layout"]["title"]["text"] == "Layer 3, head 5"


@pytest.mark.parametrize("layer,head", [("99", "0"), ("-4", "2"), ("1", "1000"), ("x", "y")])
def test_out_of_range_url_numbers(layer, head):
    at = app("attention", {"text": "hello there", "layer": layer, "head": head})
    at.run()
    no_exceptions(at)
    assert "out of range" in messages(at) or "not a number" in messages(at)
    assert figures(at)  # still drawn, clamped


def test_sentence_pair_filters(page):
    at = app("attention", {"text": "The bank was closed.", "pair": "It opens Monday."})
    at.run()
    no_exceptions(at)
    at.radio(key="direction").set_value("A → B only").run()
    fig = figures(at)[0]
    z = array(fig["data"][0]["z"])
    b = fig["layout"]["xaxis"]["ticktext"].index("it")
    assert np.isnan(z[1, 1]) and np.isfinite(z[1, b])  # A→A hidden, A→B shown
    assert any(s["type"] == "line" for s in fig["layout"]["shapes"])  # the [SEP] boundary


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_prompts(text):
    at = app("attention", {"text": text})
    at.run()
    no_exceptions(at)
    assert "Type a sentence" in messages(at)
    assert not figures(at)


def test_long_text_is_truncated_with_warning():
    at = app("attention", {"text": "word " * 600})
    at.run()
    no_exceptions(at)
    assert "truncated" in messages(at)
    assert array(figures(at)[0]["data"][0]["z"]).shape == (512, 512)


def test_control_characters_and_huge_input():
    at = app("attention")
    at.run()
    at.text_area(key="text").set_value("nul\x00 and bell\x07 " + "x" * 120_000).run()
    no_exceptions(at)
    assert "control" in messages(at) and "only the first" in messages(at)


def test_html_is_never_rendered():
    payload = "<img src=x onerror=alert(1)> **bold** [link](http://x)"
    at = app("attention", {"text": payload})
    at.run()
    no_exceptions(at)
    fig = figures(at)[0]
    assert all("<img" not in t for t in fig["layout"]["xaxis"]["ticktext"])
    assert all("<img" not in x for x in fig["data"][0]["x"])
    assert not [m for m in at.markdown if "<img" in m.value]
    # The tokenizer splits "<" off as its own token: it must arrive escaped, not as a raw "<".
    assert "&lt;" in fig["layout"]["xaxis"]["ticktext"] and "<" not in fig["layout"]["xaxis"]["ticktext"]


def test_whole_html_tokens_are_escaped_in_figures():
    """Tokenizers that keep markup in one token (BPE, or a user's own vocabulary) still give escaped labels."""
    from encoderscope import figures as figs
    from encoderscope.figures.common import token_labels

    tokens = ["<img src=x onerror=alert(1)>", "<script>", "a&b"]
    assert token_labels(tokens) == ["0·&lt;img src=x onerror=alert(1)&gt;", "1·&lt;script&gt;", "2·a&amp;b"]
    fig = figs.attention_heatmap(np.eye(3, dtype=np.float32), tokens, 0, 0).to_dict()
    labels = list(fig["layout"]["xaxis"]["ticktext"]) + list(fig["layout"]["yaxis"]["ticktext"])
    assert labels and not [t for t in labels if "<" in t]


def test_unknown_model_offline():
    at = app("attention", {"text": "hi", "model": "no-such-org/no-such-model"})
    at.run()
    no_exceptions(at)
    assert "unreachable" in messages(at) and "bundled" in messages(at)


def test_decoder_as_encoder_folder(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_head=2, n_embd=8).save_pretrained(tmp_path)
    at = app("attention", {"text": "hi", "model": str(tmp_path)})
    at.run()
    no_exceptions(at)
    assert "causal decoder" in messages(at)
