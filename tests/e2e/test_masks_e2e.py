"""Real browser: the encoder-vs-decoder page renders every section, and bad input gives messages, not tracebacks."""

import numpy as np

from tests.e2e.conftest import SHOTS, exception_boxes, open_page, plot_titled, shot, wait_for_chart, wait_idle

N_CHARTS = 17  # gallery 4 + padding 2, two masks 3, probe 3, decoder 2 + next-token bars 1, logit lens 2


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
    _assert_causal_decoder_and_bidirectional_encoder(page)
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


def _assert_causal_decoder_and_bidirectional_encoder(page) -> None:
    """Read from the page's plotly data: the real decoder's map, and the encoder's under the causal mask, have
    nothing above the diagonal (blank or exactly 0) and their rows still sum to 1 on and below it, so no
    attention was hidden by the drawing; the encoder's normal map does attend to the right."""
    for title in (r"^Decoder \(", r"^Causal mask: "):
        plot = plot_titled(page, title)
        z = plot["traces"][0]["z"]
        T = len(z)
        assert T == len(plot["xticks"]) > 3 and all(len(row) == T for row in z)
        above = [z[i][j] for i in range(T) for j in range(i + 1, T)]
        assert all(v is None or v == 0 for v in above), f"{plot['title']}: weights above the diagonal {above[:10]}"
        np.testing.assert_allclose([sum(z[i][: i + 1]) for i in range(T)], 1.0, atol=1e-4, err_msg=plot["title"])
    encoder = np.array(plot_titled(page, r"^Encoder \(")["traces"][0]["z"], dtype=float)
    assert np.triu(encoder, k=1).sum(axis=1)[:-1].min() > 0.01, "the encoder map should attend to the right"


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
