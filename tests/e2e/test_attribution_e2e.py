"""Real browser: the attribution views draw the library's numbers.

The Embeddings page's "Why are these close?" matrix sums to the cosine of `es.embed`; the Masks page's logit lens
ends on the decoder's own next-token probability. Values are read from Plotly's drawn data.
"""

import numpy as np
import pytest

import encoderscope as es
from encoderscope import decoder
from tests.e2e.conftest import (
    SHOTS,
    exception_boxes,
    open_page,
    pick_view,
    plot_titled,
    plots,
    shot,
    wait_for_chart,
    wait_for_plot,
)

A = "A man is playing a guitar on stage."  # the view's default pair (components/embeddings/why_close.py)
B = "Someone performs music with an instrument."


def test_why_are_these_close(page, app_url, encoder):
    page.set_viewport_size({"width": 1400, "height": 3000})
    open_page(page, app_url, "embeddings")
    wait_for_chart(page)  # the projection first (the view control comes after it)
    pick_view(page, "Why are these close?")
    page.get_by_text("Two texts of my own").click()
    wait_for_plot(page, "((gd.layout.title && gd.layout.title.text) || '').includes('Token × token')")
    E = es.embed(encoder, [A, B])
    pairs = np.array(plot_titled(page, "^Token × token")["traces"][0]["z"], dtype=float)
    ids_a, ids_b = encoder.tokenizer(A)["input_ids"], encoder.tokenizer(B)["input_ids"]
    assert pairs.shape == (len(ids_a), len(ids_b))
    assert pairs.sum() == pytest.approx(float(E[0] @ E[1]), abs=1e-4)
    shaded = plot_titled(page, "^Contribution of each token")["traces"][0]["z"]
    flat = np.array([v for row in shaded for v in row if v is not None], dtype=float)
    # both texts' tokens are shaded with the row and column sums: together twice the cosine
    assert flat.size == len(ids_a) + len(ids_b)
    assert flat.sum() == pytest.approx(2 * float(E[0] @ E[1]), abs=1e-3)
    assert exception_boxes(page) == 0
    section = page.get_by_text("Two texts of my own").bounding_box()
    page.screenshot(path=str(SHOTS / "embeddings_why.png"), clip={"x": 0, "y": section["y"] - 20, "width": 1400,
                                                                   "height": 1700})


def test_logit_lens_on_the_masks_page(page, app_url, decoder_model):
    page.set_viewport_size({"width": 1400, "height": 7000})
    text = "The capital of France is"
    open_page(page, app_url, "masks", "text=The+capital+of+France+is")
    wait_for_plot(page, "((gd.layout.title && gd.layout.title.text) || '').includes('Logit lens')")
    grid = np.array(plot_titled(page, "^Logit lens")["traces"][0]["z"], dtype=float)
    T = len(decoder_model.tokenizer(text)["input_ids"])
    assert grid.shape == (decoder_model.num_layers + 1, T)
    (word, p), *_ = decoder.next_tokens(decoder_model, text)
    assert word == " Paris"
    assert grid[-1, -1] == pytest.approx(p, abs=1e-4)  # the last row is the model's own prediction
    assert ((grid >= 0) & (grid <= 1)).all()
    assert "Paris" in plot_titled(page, "^When does the model know")["title"]
    assert exception_boxes(page) == 0
    shot(page, "masks_full")
    top = page.get_by_role("heading", name="5 · Inside the decoder").bounding_box()
    page.screenshot(path=str(SHOTS / "masks_lens.png"), clip={"x": 0, "y": top["y"] - 10, "width": 1400, "height": 1500})
    pick_view(page, "Which tokens made the guess?")
    page.get_by_text("Run integrated gradients").click()
    wait_for_plot(page, "((gd.layout.title && gd.layout.title.text) || '').includes('Which tokens raise')")
    page.locator('[data-testid="stMetricValue"]').get_by_text("' Paris'").wait_for()
    scores = plot_titled(page, "^Which tokens raise")["traces"][0]["z"]
    assert len([v for row in scores for v in row if v is not None]) == T
    # one view at a time: the lens's charts are gone, not hidden (so they were not built for this run either)
    assert not [p for p in plots(page) if p["title"].startswith(("Logit lens", "When does the model know"))]
    top = page.get_by_role("heading", name="5 · Inside the decoder").bounding_box()
    page.screenshot(path=str(SHOTS / "masks_attribution.png"), clip={"x": 0, "y": top["y"] - 10, "width": 1400, "height": 800})
