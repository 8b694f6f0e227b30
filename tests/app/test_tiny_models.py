"""Pages with unusual local models: one layer and one head (nothing to slide), and a folder whose name is
markdown. Plumbing only: tiny random weights with the bundled tokenizer."""

import pytest

from encoderscope import models
from tests.app.conftest import app, figures, heatmap, no_exceptions

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("models") / "[evil](http:x) *tiny*"
    config = BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=16)
    BertModel(config).save_pretrained(folder)
    src = models.bundled_encoder_path()
    for name in TOKENIZER_FILES:
        (folder / name).write_bytes((src / name).read_bytes())
    return str(folder)


@pytest.mark.parametrize("page", ["attention", "masks", "embeddings"])
def test_one_layer_one_head_model(tiny_folder, page):
    at = app(page, {"model": tiny_folder, "text": "the bank of the river"})
    at.run()
    no_exceptions(at)
    assert figures(at) or heatmap(at, "main_heatmap"), "the page should still draw its charts"
    shown = " ".join(c.value for c in at.caption)
    assert "(the only one)" in shown or page == "embeddings"
    # The folder name is markdown: it must be shown escaped, never as a link or emphasis.
    markdown = " ".join(m.value for kind in ("caption", "markdown") for m in getattr(at, kind))
    assert "[evil](http:x)" not in markdown


def test_merge_word_pieces_caption_and_rows():
    at = app("attention", {"text": "unbelievable tokenization"})
    at.run()
    before = len(heatmap(at, "main_heatmap")[0]["rows"])
    at.toggle(key="merge").set_value(True).run()
    no_exceptions(at)
    after = heatmap(at, "main_heatmap")[0]["rows"]
    assert len(after) < before
    assert any("Word-pieces merged" in c.value for c in at.caption)


def test_hide_special_tokens_and_token_focus():
    at = app("attention", {"text": "the bank of the river"})
    at.run()
    assert heatmap(at, "main_heatmap")[0]["rows"][0] == "[CLS]"
    at.toggle(key="hide").set_value(True).run()
    no_exceptions(at)
    ticks = heatmap(at, "main_heatmap")[0]["rows"]
    assert ticks == ["the", "bank", "of", "the", "river"]
    at.radio(key="attn_view").set_value("Token focus").run()
    at.selectbox(key="focus_token").set_value(4).run()
    no_exceptions(at)
    focus = heatmap(at, "focus_token_fig")
    assert focus and "river" in focus[0]["title"]
