"""The attention page under AppTest: widgets in, heatmap payloads out, clear messages for bad input."""

import numpy as np
import pytest

from tests.app.conftest import app, heatmap, main_heatmap, messages, no_exceptions


@pytest.fixture(scope="module")
def page():
    at = app("attention", {"text": "the bank and the bank"})
    at.run()
    return at


def test_main_heatmap(page):
    no_exceptions(page)
    layer, view, z, header = main_heatmap(page)
    tokens = ["[CLS]", "the", "bank", "and", "the", "bank", "[SEP]"]
    assert z.shape == (7, 7)  # duplicate tokens keep separate rows and columns
    np.testing.assert_allclose(z.sum(axis=1), 1.0, atol=1e-3)
    assert header["zmin"] == 0 and header["zmax"] == 1
    assert header["rows"] == tokens
    assert "→" in header["hover"]
    assert (layer, view) == (0, "0") and header["title"] == "Layer 0, {view}"


def test_all_heads_grid_and_other_views(page):
    grid, _ = heatmap(page, "grid")
    assert (grid["layers"], grid["heads"]) == (6, 12)
    for view, key in [("Rollout", "rollout"), ("Token focus", "focus_token_fig")]:
        page.radio(key="attn_view").set_value(view).run()
        no_exceptions(page)
        assert heatmap(page, key) is not None, view
    page.radio(key="attn_view").set_value("Head summary").run()
    assert len(page.dataframe) >= 1 and len(page.dataframe[0].value) == 72
    page.radio(key="attn_view").set_value("All heads").run()


def test_layer_and_head_change_updates_map_and_url(page):
    page.slider(key="layer").set_value(4)
    page.session_state["head"] = 7
    page.run()
    no_exceptions(page)
    layer, view, _, _ = main_heatmap(page)
    assert (layer, view) == (4, "7")
    assert page.query_params["layer"] in ("4", ["4"]) and page.query_params["head"] in ("7", ["7"])


def test_mean_over_heads(page):
    page.session_state["head"] = "mean"
    page.run()
    assert main_heatmap(page)[1] == "mean"


def test_url_restores_view():
    at = app("attention", {"text": "a shared link", "layer": "3", "head": "5"})
    at.run()
    no_exceptions(at)
    assert at.text_area(key="text").value == "a shared link"
    assert main_heatmap(at)[:2] == (3, "5")


@pytest.mark.parametrize("layer,head", [("99", "0"), ("-4", "2"), ("1", "1000"), ("x", "y")])
def test_out_of_range_url_numbers(layer, head):
    at = app("attention", {"text": "hello there", "layer": layer, "head": head})
    at.run()
    no_exceptions(at)
    assert "out of range" in messages(at) or "not a number" in messages(at)
    assert heatmap(at, "main_heatmap")  # still drawn, clamped


def test_sentence_pair_filters(page):
    at = app("attention", {"text": "The bank was closed.", "pair": "It opens Monday."})
    at.run()
    no_exceptions(at)
    at.radio(key="direction").set_value("A → B only").run()
    header, _ = heatmap(at, "main_heatmap")
    b = header["rows"].index("it")
    assert header["keep"] == "A→B" and header["divider"] == b  # the [SEP] boundary before "it"
    assert header["seq"][1] == 0 and header["seq"][b] == 1  # "the" in A (its row kept), "it" in B (its column)


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_prompts(text):
    at = app("attention", {"text": text})
    at.run()
    no_exceptions(at)
    assert "Type a sentence" in messages(at)
    assert heatmap(at, "main_heatmap") is None


def test_long_text_is_truncated_with_warning():
    at = app("attention", {"text": "word " * 600})
    at.run()
    no_exceptions(at)
    assert "truncated" in messages(at)
    assert main_heatmap(at)[2].shape == (512, 512)


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
    assert not [m for m in at.markdown if "<img" in m.value]
    # Labels travel as data and the canvas draws them as text (the hover box sets textContent): the "<" token
    # arrives as itself, neither escaped twice ("&lt;" on screen) nor dropped. The browser test checks no script runs.
    assert "<" in heatmap(at, "main_heatmap")[0]["rows"]


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
