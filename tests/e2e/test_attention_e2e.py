"""Real browser on a real server: home page and the attention explorer."""

from urllib.parse import quote

from tests.e2e.conftest import exception_boxes, open_page, shot, wait_for_chart, wait_idle


def test_home_page_renders(page, app_url):
    open_page(page, app_url)
    page.get_by_role("heading", name="Encoderscope").wait_for()
    page.get_by_text("Attention explorer").first.wait_for()
    assert exception_boxes(page) == 0
    shot(page, "home")


def test_attention_type_and_change_layer(page, app_url):
    open_page(page, app_url, "attention")
    wait_for_chart(page)
    box = page.get_by_label("Text")
    box.fill("The bat flew out of the cave at dusk.")
    box.press("Control+Enter")
    wait_idle(page)
    wait_for_chart(page)
    heatmap = page.locator(".js-plotly-plot").first
    assert "Layer 0, head 0" in heatmap.inner_text()
    # Move the layer slider with the keyboard: focus the thumb and press the right arrow twice.
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]').first
    thumb.focus()
    thumb.press("ArrowRight")
    thumb.press("ArrowRight")
    wait_idle(page)
    page.wait_for_function(
        "() => document.querySelector('.js-plotly-plot') && "
        "document.querySelector('.js-plotly-plot').innerText.includes('Layer 2, head 0')"
    )
    assert page.locator(".js-plotly-plot .heatmaplayer").count() >= 1
    assert "layer=2" in page.url
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
