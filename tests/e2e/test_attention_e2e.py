"""Real browser on a real server: home page and the attention explorer."""

import re
from urllib.parse import quote

import numpy as np

import encoderscope as es
from tests.e2e.conftest import (
    exception_boxes,
    open_page,
    plot_titled,
    shot,
    wait_for_chart,
    wait_for_plot,
    wait_idle,
)


def test_home_page_renders(page, app_url):
    open_page(page, app_url)
    page.get_by_role("heading", name="Encoderscope").wait_for()
    page.get_by_text("Attention explorer").first.wait_for()
    assert exception_boxes(page) == 0
    shot(page, "home")


def test_home_url_is_the_home_page(page, app_url):
    # Bug caught: /home, the home page's own URL, answering with a "Page not found" dialog (Streamlit ignores
    # the default page's url_path).
    open_page(page, app_url, "home")
    page.get_by_role("heading", name="Encoderscope").wait_for()
    assert page.get_by_text("Page not found").count() == 0
    assert exception_boxes(page) == 0


def test_default_sentence_opens_on_the_bank_river_head(page, app_url, encoder):
    """With no layer/head in the link, the page opens on the head where "bank" attends most to "river" and
    "fishing" (merged words: query rows averaged, key columns summed), computed here from the library's weights."""
    # Bug caught: opening on layer 0/head 0 again, or on a head picked from the wrong axis or wrong words.
    open_page(page, app_url, "attention")
    wait_for_chart(page)
    text = page.get_by_label("Text").input_value()
    merged = es.merge_word_pieces(es.attention(encoder, text))
    words = [t.lower() for t in merged.tokens]
    rows = [i for i, w in enumerate(words) if w == "bank"]
    cols = [j for j, w in enumerate(words) if w in ("river", "fishing")]
    assert rows and cols, f"the default sentence lost its words: {text!r}"
    score = merged.weights[:, :, rows][:, :, :, cols].sum(-1).mean(-1)  # [L, H]
    want_layer, want_head = np.unravel_index(int(np.argmax(score)), score.shape)
    _, layer, head = _main_heatmap(page)
    assert (layer, head) == (want_layer, want_head)
    assert page.get_by_text(f"{score[layer, head]:.0%} of its attention").count() == 1


TYPED = "The bat flew out of the cave at dusk."
MAIN_TITLE = r"^Layer (\d+), (?:head (\d+)|mean)$"


def _main_heatmap(page) -> tuple[dict, int, int | None]:
    """The main heatmap as drawn, with the layer and head (None for "mean") its title names."""
    plot = plot_titled(page, MAIN_TITLE)
    layer, head = re.match(MAIN_TITLE, plot["title"]).groups()
    return plot, int(layer), None if head is None else int(head)


def _expected(weights: np.ndarray, layer: int, head: int | None) -> np.ndarray:
    return weights[layer].mean(0) if head is None else weights[layer, head]


def test_attention_type_and_change_layer(page, app_url, encoder):
    """The typed words are the heatmap's tick labels, and the cells are the library's weights for the layer and
    head in the title, before and after moving the layer slider."""
    open_page(page, app_url, "attention")
    wait_for_chart(page)
    box = page.get_by_label("Text")
    box.fill(TYPED)
    box.press("Control+Enter")
    wait_for_plot(page, "((gd.layout.xaxis || {}).ticktext || []).includes('dusk')")
    tokens = ["[CLS]", *encoder.tokenizer.tokenize(TYPED), "[SEP]"]
    plot, layer, head = _main_heatmap(page)
    assert plot["xticks"] == tokens and plot["yticks"] == tokens
    for word in TYPED.lower().rstrip(".").split():
        assert word in plot["xticks"], f"the typed word {word!r} is not a tick label: {plot['xticks']}"
    weights = es.attention(encoder, TYPED).weights
    np.testing.assert_allclose(plot["traces"][0]["z"], _expected(weights, layer, head), atol=1e-5)
    # Move the layer slider two steps with the keyboard (right, or left from the last layers).
    step, target = ("ArrowRight", layer + 2) if layer + 2 < len(weights) else ("ArrowLeft", layer - 2)
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]').first
    thumb.focus()
    thumb.press(step)
    thumb.press(step)
    wait_for_plot(page, f"((gd.layout.title || {{}}).text || '').includes('Layer {target},')")
    plot, moved, head = _main_heatmap(page)
    assert moved == target and f"layer={moved}" in page.url
    np.testing.assert_allclose(plot["traces"][0]["z"], _expected(weights, moved, head), atol=1e-5)
    assert exception_boxes(page) == 0
    shot(page, "attention")


def test_attention_bad_input_shows_message(page, app_url):
    payload = quote('<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>')
    open_page(page, app_url, "attention", f"text={payload}&layer=99&head=-4")
    wait_for_chart(page)
    assert page.get_by_text("out of range").first.is_visible()
    # The markup is shown as text in the box and tick labels, never executed (it would set window.__xss).
    assert "onerror" in page.get_by_label("Text").input_value()
    assert page.evaluate("() => window.__xss === undefined")
    assert exception_boxes(page) == 0
    shot(page, "attention_bad_input")


def test_clicking_a_thumbnail_focuses_that_head(page, app_url):
    open_page(page, app_url, "attention", "text=The+bank+of+the+river.")
    wait_for_chart(page)
    grid = page.locator(".js-plotly-plot").nth(1)
    grid.scroll_into_view_if_needed()
    box = grid.locator(".nsewdrag").first.bounding_box()
    # 6 layers x (12 heads + mean): click the centre of layer 3, head 5.
    page.mouse.click(box["x"] + box["width"] * 5.5 / 13, box["y"] + box["height"] * 3.5 / 6)
    page.wait_for_function(
        "() => document.querySelector('.js-plotly-plot').innerText.includes('Layer 3, head 5')", timeout=60_000
    )
    wait_idle(page)
    assert "layer=3" in page.url and "head=5" in page.url
    assert exception_boxes(page) == 0
