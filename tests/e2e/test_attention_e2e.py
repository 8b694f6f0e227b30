"""Real browser on a real server: home page and the attention explorer.

The attention maps are canvas heatmaps: the tests read the values each one drew (`heatmaps` in conftest: what
every colour stands for, NaN for a greyed cell) and compare them with `es.attention` computed here, within the
colour quantisation (1/255 of the 0-1 scale)."""

import re
from urllib.parse import quote, urlencode

import numpy as np

import encoderscope as es
from tests.e2e.conftest import (
    MAIN_HEATMAP,
    exception_boxes,
    heatmap_tagged,
    open_page,
    shot,
    wait_for_heatmap,
    wait_idle,
)

COLOUR = 1 / 255 + 1e-6


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


def _main(page) -> tuple[dict, int, str]:
    """The main map as drawn, with the layer and head ("mean" or a number) of its data-es-heatmap tag."""
    drawn = heatmap_tagged(page, MAIN_HEATMAP)
    layer, head = drawn["tag"].split(":")
    return drawn, int(layer), head


def _expected(weights: np.ndarray, layer: int, head: str) -> np.ndarray:
    return weights[layer].mean(0) if head == "mean" else weights[layer, int(head)]


def _open_main(page, app_url: str, query: str = "") -> None:
    open_page(page, app_url, "attention", query)
    wait_for_heatmap(page, "/^\\d+:/.test(h.tag) && h.exact")


def test_default_sentence_opens_on_the_bank_river_head(page, app_url, encoder):
    """With no layer/head in the link, the page opens on the head where "bank" attends most to "river" and
    "fishing" (merged words: query rows averaged, key columns summed), computed here from the library's weights."""
    # Bug caught: opening on layer 0/head 0 again, or on a head picked from the wrong axis or wrong words.
    _open_main(page, app_url)
    text = page.get_by_label("Text").input_value()
    merged = es.merge_word_pieces(es.attention(encoder, text))
    words = [t.lower() for t in merged.tokens]
    rows = [i for i, w in enumerate(words) if w == "bank"]
    cols = [j for j, w in enumerate(words) if w in ("river", "fishing")]
    assert rows and cols, f"the default sentence lost its words: {text!r}"
    score = merged.weights[:, :, rows][:, :, :, cols].sum(-1).mean(-1)  # [L, H]
    want_layer, want_head = np.unravel_index(int(np.argmax(score)), score.shape)
    drawn, layer, head = _main(page)
    assert (layer, head) == (want_layer, str(want_head))
    np.testing.assert_allclose(drawn["values"], _expected(es.attention(encoder, text).weights, layer, head),
                               atol=COLOUR)
    assert page.get_by_text(f"{score[layer, int(head)]:.0%} of its attention").count() == 1
    shot(page, "attention")


TYPED = "The bat flew out of the cave at dusk."


def test_attention_type_and_change_layer(page, app_url, encoder):
    """The drawn cells are the library's weights for the typed text and the layer and head of the map's tag,
    before and after moving the layer slider (a server round trip that sends one layer)."""
    _open_main(page, app_url)
    before = _main(page)[0]["id"]
    box = page.get_by_label("Text")
    box.fill(TYPED)
    box.press("Control+Enter")
    wait_for_heatmap(page, f"/^\\d+:/.test(h.tag) && h.id !== {before!r} && h.exact")
    wait_idle(page)
    weights = es.attention(encoder, TYPED).weights
    drawn, layer, head = _main(page)
    assert drawn["values"].shape == weights.shape[-2:]
    np.testing.assert_allclose(drawn["values"], _expected(weights, layer, head), atol=COLOUR)
    # Move the layer slider two steps with the keyboard (right, or left from the last layers).
    step, target = ("ArrowRight", layer + 2) if layer + 2 < len(weights) else ("ArrowLeft", layer - 2)
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]').first
    thumb.focus()
    thumb.press(step)
    thumb.press(step)
    wait_for_heatmap(page, f"h.tag.startsWith('{target}:') && h.exact")
    wait_idle(page)
    drawn, moved, head = _main(page)
    assert moved == target and f"layer={moved}" in page.url
    np.testing.assert_allclose(drawn["values"], _expected(weights, moved, head), atol=COLOUR)
    assert exception_boxes(page) == 0


def test_head_change_is_drawn_in_the_browser(page, app_url, encoder):
    """A head button redraws the map in the same task as the click (no server round trip), with that head's
    weights, and writes ?head= into the URL; the server follows (the CSV name) and a reload keeps it."""
    # Bugs caught: a head switch showing another head's data (store order), a URL that forgets a browser-side
    # head change, or the server's view (downloads) left on the old head.
    text = "The bank of the river was steep."
    _open_main(page, app_url, urlencode({"text": text, "layer": 3, "head": 2}))
    weights = es.attention(encoder, text).weights
    for head in ("7", "mean", "0"):
        tag = page.evaluate(
            """(head) => {
              const root = [...window.__esHeatmaps].find(r => r.isConnected && /^\\d+:/.test(r.dataset.esHeatmap));
              root.querySelector(`button[data-view="${head}"]`).click();
              return root.dataset.esHeatmap;  // read in the same task as the click: drawn without the server
            }""",
            head,
        )
        assert tag == f"3:{head}"
        drawn, layer, shown = _main(page)
        np.testing.assert_allclose(drawn["values"], _expected(weights, 3, head), atol=COLOUR)
        # The browser writes ?head= at once; the rerun of an earlier click may briefly write its own head back,
        # so the URL is checked once the runs are done.
        wait_idle(page)
        assert f"head={head}" in page.url and _main(page)[0]["tag"] == f"3:{head}"
    wait_idle(page)
    assert "head=0" in page.url and "layer=3" in page.url
    assert page.get_by_role("button", name="Selected head (.csv)").count() == 1
    page.reload()
    wait_idle(page)
    wait_for_heatmap(page, "h.tag === '3:0'")
    assert exception_boxes(page) == 0


def test_hover_shows_the_exact_weight(page, app_url, encoder):
    """Hovering a cell shows "from i: token → to j: token: weight" with the weight to 4 decimals, not the colour's
    1/255 step."""
    text = "The bank of the river was steep."
    _open_main(page, app_url, urlencode({"text": text, "layer": 1, "head": 4}))
    res = es.attention(encoder, text)
    drawn, _, _ = _main(page)
    g = drawn["geometry"]
    canvas = page.locator(".esh-wrap[data-es-heatmap='1:4'] canvas")
    box = canvas.bounding_box()
    i, j = res.tokens.index("bank"), res.tokens.index("river")
    page.mouse.move(box["x"] + g["x0"] + (j + 0.5) * g["cw"], box["y"] + g["y0"] + (i + 0.5) * g["ch"])
    tip = page.locator(".esh-tip").first
    tip.wait_for(state="visible")
    match = re.fullmatch(r"from (\d+): (\S+) → to (\d+): (\S+): ([0-9.]+)", tip.inner_text().strip())
    assert match, tip.inner_text()
    assert match.group(1, 2, 3, 4) == (str(i), "bank", str(j), "river")
    assert abs(float(match.group(5)) - res.weights[1, 4, i, j]) <= 5e-5 + 1e-6


def test_sentence_pair_filter_greys_cells(page, app_url, encoder):
    # Bug caught: the A→B filter greying the wrong block (or none) in what is drawn.
    text, pair = "The bank was closed.", "It opens Monday."
    _open_main(page, app_url, urlencode({"text": text, "pair": pair, "layer": 1, "head": 5}))
    page.get_by_text("A → B only").click()
    wait_idle(page)
    res = es.attention(encoder, text, pair)
    seq = np.array([-1 if s is None else s for s in res.sequence_ids])
    keep = (seq[:, None] == 0) & (seq[None, :] == 1)
    drawn = _main(page)[0]["values"]
    for _ in range(60):  # under load the rerun may start after wait_idle's grace period: wait for a redraw
        if not np.isfinite(drawn).all():
            break
        page.wait_for_timeout(500)
        drawn = _main(page)[0]["values"]
    assert np.array_equal(np.isfinite(drawn), keep)
    np.testing.assert_allclose(drawn[keep], res.weights[1, 5][keep], atol=COLOUR)
    shot(page, "attention_pair")


def test_512_tokens_drawn_readable(page, app_url, encoder):
    """At the model's limit (512 tokens) every drawn value matches, and tick labels thin out so they never
    overlap (one label per 13 px at least)."""
    text = " ".join(["the bank of the river was steep and muddy so we went fishing"] * 60)
    _open_main(page, app_url, urlencode({"text": text, "layer": 2, "head": 1}))
    res = es.attention(encoder, text)
    assert len(res.tokens) == 512
    drawn, layer, head = _main(page)
    np.testing.assert_allclose(drawn["values"], _expected(res.weights, layer, head), atol=COLOUR)
    g = drawn["geometry"]
    assert g["colStep"] * g["cw"] >= 13 and g["rowStep"] * g["ch"] >= 13 and g["colStep"] > 1
    shot(page, "attention_512")


def test_attention_bad_input_shows_message(page, app_url):
    payload = quote('<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>')
    _open_main(page, app_url, f"text={payload}&layer=99&head=-4")
    assert page.get_by_text("out of range").first.is_visible()
    # The markup is shown as text in the box, drawn as text on the canvas and in the hover box, never executed
    # (it would set window.__xss).
    assert "onerror" in page.get_by_label("Text").input_value()
    drawn = _main(page)[0]
    g = drawn["geometry"]
    box = page.locator(".esh-stage canvas").first.bounding_box()
    for k in range(drawn["rows"]):
        page.mouse.move(box["x"] + g["x0"] + (k + 0.5) * g["cw"], box["y"] + g["y0"] + (k + 0.5) * g["ch"])
    assert page.evaluate("() => window.__xss === undefined")
    assert exception_boxes(page) == 0
    shot(page, "attention_bad_input")


def test_clicking_a_thumbnail_focuses_that_head(page, app_url):
    _open_main(page, app_url, "text=The+bank+of+the+river.")
    grid = page.locator(".esh-wrap[data-es-grid]")
    grid.scroll_into_view_if_needed()
    g = grid.evaluate("r => r.__esGrid")
    box = grid.locator("canvas").bounding_box()
    # 6 layers x (12 heads + mean): click the centre of layer 3, head 5.
    step = g["cell"] + g["gap"]
    page.mouse.click(box["x"] + g["x0"] + 5 * step + g["cell"] / 2, box["y"] + g["y0"] + 3 * step + g["cell"] / 2)
    wait_for_heatmap(page, "h.tag === '3:5'")
    wait_idle(page)
    assert "layer=3" in page.url and "head=5" in page.url
    assert exception_boxes(page) == 0


def test_clicking_a_row_focuses_that_token(page, app_url, encoder):
    # Bug caught: a row click focusing another token (row/column or index mix-up), or doing nothing.
    text = "The bank of the river was steep."
    _open_main(page, app_url, urlencode({"text": text, "layer": 0, "head": 0}))
    res = es.attention(encoder, text)
    i = res.tokens.index("river")
    drawn = _main(page)[0]
    g = drawn["geometry"]
    box = page.locator(".esh-wrap[data-es-heatmap='0:0'] canvas").bounding_box()
    page.mouse.click(box["x"] + g["x0"] + 0.5 * g["cw"], box["y"] + g["y0"] + (i + 0.5) * g["ch"])
    wait_for_heatmap(page, f"h.tag === 'focus:{i}'")
    wait_idle(page)
    focus = heatmap_tagged(page, r"^focus:")
    np.testing.assert_allclose(focus["values"], es.token_focus(res, i), atol=COLOUR)


def test_png_and_svg_exports_hold_what_is_drawn(page, app_url, encoder):
    # Bug caught: an export of an empty canvas, of another head, or an SVG without the labels.
    import io

    from PIL import Image

    text = "The bank of the river was steep."
    _open_main(page, app_url, urlencode({"text": text, "layer": 2, "head": 4}))
    root = page.locator(".esh-wrap[data-es-heatmap='2:4']")
    with page.expect_download() as png:
        root.locator("button[data-act=png]").click()
    assert png.value.suggested_filename == "attention_L2_H4.png"
    image = Image.open(io.BytesIO(open(png.value.path(), "rb").read())).convert("RGB")
    size = root.locator("canvas").evaluate("c => [c.width, c.height]")
    assert list(image.size) == size
    g = _main(page)[0]["geometry"]
    res = es.attention(encoder, text)
    i = j = res.tokens.index("river")  # a cell's colour in the file is the drawn one: darker for a larger weight
    pixel = image.getpixel((int(g["x0"] + (j + 0.5) * g["cw"]), int(g["y0"] + (i + 0.5) * g["ch"])))
    drawn = root.locator("canvas").evaluate(
        f"c => Array.from(c.getContext('2d').getImageData({int(g['x0'] + (j + 0.5) * g['cw'])}, "
        f"{int(g['y0'] + (i + 0.5) * g['ch'])}, 1, 1).data.slice(0, 3))")
    assert list(pixel) == drawn
    with page.expect_download() as svg:
        root.locator("button[data-act=svg]").click()
    assert svg.value.suggested_filename == "attention_L2_H4.svg"
    text_svg = open(svg.value.path(), encoding="utf-8").read()
    assert "Layer 2, head 4" in text_svg and "<image" in text_svg and ">river</text>" in text_svg
