"""The Masks page's "Inside the decoder" panel draws the decoder's own numbers.

The lens is recomputed here by hand from the model's hidden states (final norm, then the LM head), and the
attribution with `es.token_attribution` (the public API), never with the panel's code. The panel shows one view at
a time (the one-view control `inside_view`): the hidden one computes nothing.
"""

import io

import numpy as np
import pandas as pd
import pytest
import torch

import encoderscope as es
from encoderscope import settings
from tests.app.conftest import array, download, figures, messages, no_exceptions, opened, show

TEXT = "The capital of France is"
VIEW, LENS, ATTRIBUTION = "inside_view", "Logit lens", "Which tokens made the guess?"


def _titled(at, prefix: str) -> dict:
    found = [f for f in figures(at) if ((f["layout"].get("title") or {}).get("text") or "").startswith(prefix)]
    assert len(found) == 1, [(f["layout"].get("title") or {}).get("text") for f in figures(at)]
    return found[0]


@pytest.fixture(scope="module")
def page():
    return opened("masks", {"text": TEXT})


@pytest.fixture(scope="module")
def by_hand(decoder_model):
    """[L+1, T, V] probabilities: norm + head on layers 0..L-1, the model's own logits at layer L."""
    m = decoder_model.model
    ids = decoder_model.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = m(input_ids=ids, output_hidden_states=True)
        rows = [torch.softmax(m.lm_head(m.model.norm(h[0])).float(), -1) for h in out.hidden_states[:-1]]
        rows.append(torch.softmax(out.logits[0].float(), -1))
    return torch.stack(rows).numpy()


def test_lens_grid_is_the_top_probability_per_layer_and_position(page, by_hand):
    # Bug caught: layers drawn upside down, positions shifted, the final norm skipped or applied twice.
    z = array(_titled(page, "Logit lens")["data"][0]["z"]).astype(float)
    np.testing.assert_allclose(z, by_hand.max(-1), atol=1e-4)
    text = _titled(page, "Logit lens")["data"][0]["text"]
    assert text[-1][-1] == "Paris"


def test_target_line_is_paris_by_layer(page, by_hand, decoder_model):
    fig = _titled(page, "When does the model know")
    paris = decoder_model.tokenizer(" Paris", add_special_tokens=False)["input_ids"][0]
    assert "Paris" in fig["layout"]["title"]["text"]
    np.testing.assert_allclose(array(fig["data"][0]["y"]).astype(float), by_hand[:, -1, paris], atol=1e-4)


def test_lens_csv(page, by_hand, decoder_model):
    name, data = download(page, "Lens table (CSV)")
    frame = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    L1, T, _ = by_hand.shape
    assert name == "logit_lens.csv" and len(frame) == L1 * T * 5
    top1 = frame[frame["rank"] == 1].sort_values(["layer", "position"])
    np.testing.assert_allclose(top1["prob"].to_numpy().reshape(L1, T), by_hand.max(-1), atol=1e-4)
    last = top1[(top1.layer == L1 - 1) & (top1.position == T - 1)]
    assert last["token"].tolist() == [" Paris"]


def test_token_attribution_on_request(page, decoder_model):
    show(page, VIEW, ATTRIBUTION)
    assert not [f for f in figures(page) if "Which tokens raise" in str(f["layout"].get("title"))]
    page.toggle(key="attr_run").set_value(True).run()
    no_exceptions(page)
    steps = int(page.slider(key="attr_steps").value)
    ta = es.token_attribution(decoder_model, TEXT, steps=steps)
    z = array(_titled(page, "Which tokens raise")["data"][0]["z"]).astype(float)
    # the page's job runs on the compute pool with its own thread count: float sums in another order (~2e-5)
    np.testing.assert_allclose(z[~np.isnan(z)], ta.scores, rtol=1e-3, atol=1e-4)
    assert [m.value for m in page.metric if m.label == "Next token"] == ["' Paris'"]
    frame = pd.read_csv(io.BytesIO(download(page, "Token scores (CSV)")[1]))
    np.testing.assert_allclose(frame["score"], z[~np.isnan(z)], atol=1e-9)  # the CSV is what was drawn
    # a typed target is explained instead of the model's own guess
    page.text_input(key="attr_target").set_value(" London").run()
    no_exceptions(page)
    assert [m.value for m in page.metric if m.label == "Next token"] == ["' London'"]


def test_public_mode_caps_the_steps(decoder_model):
    settings.reload({"ENCODERSCOPE_PUBLIC": "1"})
    try:
        at = show(opened("masks", {"text": TEXT}), VIEW, ATTRIBUTION)
        at.toggle(key="attr_run").set_value(True).run()
        no_exceptions(at)
        assert at.slider(key="attr_steps").max == settings.get().attribution_max_steps == 16
        assert at.slider(key="attr_steps").value <= 16
    finally:
        settings.reload()


def test_empty_target_word_means_the_models_guess_and_junk_is_a_message(page):
    show(page, VIEW, ATTRIBUTION)
    page.text_input(key="attr_target").set_value("").run()
    assert [m.value for m in page.metric if m.label == "Next token"] == ["' Paris'"]
    assert "Could not" not in messages(page)


def _attribution_drawn(at) -> bool:
    return any("Which tokens raise" in str(f["layout"].get("title")) for f in figures(at))


def test_the_hidden_view_computes_nothing(jobs):
    # Bug caught (issue 24): tabs ran the attribution view's body while the logit lens was shown, so once its switch
    # was on, every new text ran integrated gradients (a backward pass per step) for a view nobody looked at.
    at = show(opened("masks", {"text": "The ferry left the harbour at"}), VIEW, ATTRIBUTION)
    at.toggle(key="attr_run").set_value(True)
    at.slider(key="attr_steps").set_value(4).run()
    no_exceptions(at)
    assert "token attribution" in jobs() and _attribution_drawn(at)
    show(at, VIEW, LENS)
    assert not _attribution_drawn(at) and "attr_run" not in [t.key for t in at.toggle]  # gone, not hidden
    assert not [m for m in at.metric if m.label == "Next token"]
    jobs()
    at.text_area(key="mask_text").set_value("The ferry left the harbour for").run()  # a text no test has run
    no_exceptions(at)
    ran = jobs()
    assert "logit lens" in ran and "token attribution" not in ran, ran
    assert not _attribution_drawn(at)
    show(at, VIEW, ATTRIBUTION)  # its switch and steps kept their values while hidden: the new text is explained now
    assert at.toggle(key="attr_run").value and at.slider(key="attr_steps").value == 4
    assert "token attribution" in jobs() and _attribution_drawn(at)
