"""The compare sections of /masks (encoder x decoder) and /vision (an image encoder's layers, with its untrained
baseline) under AppTest: nothing runs until "Measure", then the drawn maps equal es.compare computed here."""

from __future__ import annotations

import numpy as np

import encoderscope as es
from components.vision.compare import image_set
from encoderscope import corpora, settings
from tests.app.conftest import app, heatmap, heatmap_values, no_exceptions
from tests.conftest import VIT_TINY

EXACT = 1.0 / 65535 + 1e-9


def _drawn(at, key):
    found = heatmap(at, key)
    assert found is not None, f"no heatmap {key}"
    header, blocks = found
    return heatmap_values(header, blocks, header["view"])


def test_masks_measures_nothing_until_asked():
    at = app("masks")
    at.run()
    no_exceptions(at)
    assert heatmap(at, "masks_cka") is None
    assert not at.toggle(key="measure").value


def test_masks_encoder_against_decoder_map(encoder, decoder_model):
    # Bugs: the decoder's rows drawn as columns; the encoder compared with itself; another corpus than the one picked.
    at = app("masks", {"measure": "1"})
    at.run()
    at.selectbox(key="measure_corpus").set_value("Topics").run()
    no_exceptions(at)
    texts = [t for t, _ in corpora.CORPORA["Topics"]]
    expected = es.compare.layer_similarity(encoder, decoder_model, texts, metric="cka").matrix
    drawn = _drawn(at, "masks_cka")
    assert drawn.shape == (encoder.num_layers + 1, decoder_model.num_layers + 1)
    np.testing.assert_allclose(drawn, expected, atol=EXACT)


def test_vision_self_map_and_untrained_baseline(vit):
    # Bugs: the baseline computed from the trained weights; crops of another picture; the diagonal not 1.
    settings.reload({"ENCODERSCOPE_MODELS_DIR": str(VIT_TINY.parent)})
    try:
        at = app("vision", {"layers": "1"})
        at.run()
        at.toggle(key="v_layers_untrained").set_value(True).run()
        no_exceptions(at)
    finally:
        settings.reload()
    from components import resources

    _, images = image_set(resources.sample_image_bytes("china.jpg"))  # the page's default picture
    feats = es.compare.layer_features(vit, images)
    drawn = _drawn(at, "vision_layers")
    np.testing.assert_allclose(drawn, es.compare.similarity_matrix(feats, None, "cka").matrix, atol=EXACT)
    np.testing.assert_allclose(np.diag(drawn)[1:], 1.0, atol=1e-4)
    base = es.compare.layer_features(es.compare.untrained(vit, seed=0), images)
    drawn_base = _drawn(at, "vision_layers_untrained")
    np.testing.assert_allclose(drawn_base, es.compare.similarity_matrix(feats, base, "cka").matrix, atol=EXACT)
    assert drawn[-1, -1] > drawn_base[-1, -1]
