"""Real browser: the encoder-vs-decoder page renders every section."""

from tests.e2e.conftest import exception_boxes, open_page, shot, wait_for_chart, wait_idle


def test_masks_page(page, app_url):
    open_page(page, app_url, "masks", "text=The+bank+was+steep+and+muddy.")
    wait_for_chart(page)
    page.get_by_text("Next-token prediction").wait_for(timeout=180_000)
    wait_idle(page)
    shot(page, "masks")  # stretches the viewport to the whole page, so every chart gets drawn
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 15", timeout=60_000)
    assert page.get_by_text("First differing token").first.is_visible()
    assert exception_boxes(page) == 0
