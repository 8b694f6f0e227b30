"""Public-mode limits as a visitor meets them on the pages (ENCODERSCOPE_PUBLIC=1), not only in Settings."""

from pathlib import Path

import numpy as np
import pytest

import encoderscope as es
from encoderscope import settings
from tests.app.conftest import main_heatmap, messages, opened

CUSTOM_MODEL = "Other (hub id or local folder)…"


@pytest.fixture
def public():
    """The public deployment's settings for one test, then the normal ones again."""
    conf = settings.reload({"ENCODERSCOPE_PUBLIC": "1"})
    assert conf.public and conf.max_chars < settings.Settings().max_chars  # a real, lower limit
    yield conf
    settings.reload()


def test_long_text_is_cut_at_the_public_limit(public, encoder):
    # Bug: the public character or token limit not applied on the page (a visitor could make the server
    # tokenize 100 000 characters and build a 512-token tensor).
    text = "word " * (public.max_chars // 5 + 200)
    at = opened("attention", {"text": text, "layer": "1", "head": "1"})
    assert f"The text has {len(text):,} characters; only the first {public.max_chars:,} are used." in messages(at)
    assert f"reads at most {public.max_tokens}" in messages(at)
    res = es.attention(encoder, text[: public.max_chars])  # the encoder's limit follows the current settings
    assert len(res.tokens) == public.max_tokens
    layer, head, drawn, _ = main_heatmap(at)
    np.testing.assert_allclose(drawn, res.weights[layer, int(head)], atol=2e-5)


@pytest.mark.parametrize("page", ["attention", "embeddings"])
def test_no_custom_model_box(public, page):
    # Bug: the free-text model box offered on a public server, letting visitors load any hub id.
    at = opened(page, {"text": "hello"})
    assert CUSTOM_MODEL not in at.selectbox(key="model_select").options
    assert "model_custom" not in [box.key for box in at.text_input]


@pytest.mark.parametrize("wanted", ["someone/their-model", "/etc", str(Path.home())])
def test_link_to_an_unlisted_model_falls_back_to_the_bundled_one(public, wanted):
    # Bug: a link's ?model= loading a hub id or a server folder that the public server does not list.
    at = opened("attention", {"text": "the bank of the river", "model": wanted})
    assert f"The model {wanted!r} from the link is not available on this server" in messages(at)
    assert at.selectbox(key="model_select").value == at.selectbox(key="model_select").options[0]
    assert "all\\-MiniLM\\-L6\\-v2" in " ".join(c.value for c in at.caption)
    assert main_heatmap(at)


def test_vae_page_lists_only_the_servers_vaes(tiny_kl_dir):
    # Bug: a public VAE picker offering free text, or a ?vae= link to a server path loading it.
    settings.reload({"ENCODERSCOPE_PUBLIC": "1", "ENCODERSCOPE_MODELS_DIR": str(Path(tiny_kl_dir).parent)})
    try:
        at = opened("vae", {"vae": "/etc"})
        box = at.selectbox(key="vae_select")
        assert box.options[0].startswith(tiny_kl_dir) and not any(o.startswith("Other") for o in box.options)
        assert box.value == tiny_kl_dir
        assert "The VAE '/etc' from the link is not available on this server" in messages(at)
        assert {m.label: m.value for m in at.metric}["Latent shape"].startswith("4×")  # the listed VAE works
    finally:
        settings.reload()
