"""Real browser: the encoder-vs-decoder page renders every section, and bad input gives messages, not tracebacks."""

from tests.e2e.conftest import SHOTS, exception_boxes, open_page, shot, wait_for_chart, wait_idle

N_CHARTS = 15  # gallery 4 + padding 2, two masks 3, probe 3, decoder 2 + next-token bars 1


def _tall(page) -> None:
    """A viewport tall enough that Streamlit draws every chart (it skips the ones far off screen)."""
    page.set_viewport_size({"width": 1400, "height": 6000})


def test_masks_page(page, app_url):
    _tall(page)
    open_page(page, app_url, "masks", "text=The+bank+was+steep+and+muddy.")
    wait_for_chart(page)
    page.get_by_text("Next-token prediction", exact=True).wait_for(timeout=180_000)
    wait_idle(page)
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {N_CHARTS}", timeout=60_000)
    assert page.locator(".js-plotly-plot").count() == N_CHARTS
    assert page.get_by_text("First differing token").first.is_visible()
    assert page.get_by_text("Grouped-query attention: 3 key/value heads").first.is_visible()
    assert exception_boxes(page) == 0
    shot(page, "masks")
    # The decoder section up close: lower-triangular map, next-token bars.
    top = page.get_by_role("heading", name="4 · A real causal decoder").bounding_box()
    bottom = page.locator(".js-plotly-plot").last.bounding_box()
    clip = {
        "x": top["x"] - 10,
        "y": top["y"] - 10,
        "width": 1100,
        "height": bottom["y"] + bottom["height"] - top["y"] + 20,
    }
    page.screenshot(path=str(SHOTS / "masks_decoder.png"), clip=clip)


def test_masks_bad_input(page, app_url):
    _tall(page)
    open_page(page, app_url, "masks", "text=%20%20")
    page.get_by_text("Type a sentence above").wait_for(timeout=120_000)
    assert exception_boxes(page) == 0
    # A prefix beyond the text, an encoder given as the decoder (offline: a clear message either way).
    open_page(page, app_url, "masks", "text=The+bank+was+steep.&prefix=99&decoder=bert-base-uncased")
    wait_for_chart(page)
    page.get_by_text("work without a decoder").wait_for(timeout=120_000)
    assert page.get_by_text("out of range").first.is_visible()
    assert exception_boxes(page) == 0
    shot(page, "masks_bad_input")
