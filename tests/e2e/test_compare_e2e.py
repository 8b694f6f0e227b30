"""Real browser on a real server: the Compare page (MiniLM against MPNet on the default corpus) and the compare
sections of /masks and /vision.

The layer map is the canvas heatmap: the test reads the values its colours stand for (`heatmaps` in conftest) and
the exact value its hover shows. The pair map sets data-es-pairmap / data-es-hover / data-es-selected and
`__esPairmap` (values, rings drawn, point positions) after each draw; the test hovers and clicks real points."""

import re

import numpy as np
import pytest

import encoderscope as es
from encoderscope import corpora
from tests.e2e.conftest import exception_boxes, heatmap_tagged, open_page, shot, wait_for_heatmap, wait_idle

TEXTS = [t for t, _ in corpora.CORPORA["Word senses (bank, bat, spring, cell)"]]
COLOUR = 1 / 255 + 1e-6
PAIRS = "[...(window.__esPairmaps || [])].find(r => r.isConnected && r.__esPairmap)"
LONG = 400_000  # ms: two real models on a shared 2-core machine


@pytest.fixture(scope="module")
def feats(encoder, mpnet):
    return es.compare.layer_features(encoder, TEXTS), es.compare.layer_features(mpnet, TEXTS)


def _open(page, app_url, query=""):
    open_page(page, app_url, "compare", query)
    wait_for_heatmap(page, "h.tag === 'compare_map:cka' && h.exact", timeout=LONG)
    page.wait_for_function(f"() => {PAIRS}", timeout=LONG)
    wait_idle(page, LONG)


def _pairs(page) -> dict:
    return page.evaluate(f"""() => {{ const r = {PAIRS}, p = r.__esPairmap;
        return {{tag: r.dataset.esPairmap, colourBy: r.dataset.esColourBy, hover: r.dataset.esHover,
                 selected: r.dataset.esSelected, n: p.n, values: Array.from(p.values), rings: p.rings}}; }}""")


def _point(page, i: int, panel: str) -> tuple[float, float]:
    """Viewport coordinates of point i in panel "a" or "b" (the map scrolled into view first)."""
    page.locator(".espm-wrap canvas.espm-over").scroll_into_view_if_needed()
    return tuple(page.evaluate(f"""() => {{ const r = {PAIRS}, c = r.querySelector('canvas.espm-over')
        .getBoundingClientRect(), p = r.__esPairmap.at({i}).{panel}; return [c.left + p[0], c.top + p[1]]; }}"""))


def test_layer_map_draws_the_librarys_matrix_with_exact_hover(page, app_url, encoder, mpnet, feats, mpnet_dir):
    _open(page, app_url)
    drawn = heatmap_tagged(page, r"^compare_map:cka$")
    fa, fb = feats
    expected = es.compare.similarity_matrix(fa, fb, "cka").matrix
    assert (drawn["rows"], drawn["cols"]) == expected.shape
    np.testing.assert_allclose(drawn["values"], expected, atol=COLOUR)
    # Exact hover on the last cell (MiniLM's last layer, MPNet's last layer).
    g = drawn["geometry"]
    canvas = page.locator(".esh-wrap[data-es-heatmap='compare_map:cka'] canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x = box["x"] + g["x0"] + (drawn["cols"] - 0.5) * g["cw"]
    y = box["y"] + g["y0"] + (drawn["rows"] - 0.5) * g["ch"]
    page.mouse.move(x, y)
    tip = page.locator(".esh-wrap[data-es-heatmap='compare_map:cka'] .esh-tip")
    tip.wait_for(state="visible")
    tip = tip.inner_text()
    assert f"{expected[-1, -1]:.4f}" in tip and "layer 6: L6" in tip and "layer 12: L12" in tip, tip
    assert exception_boxes(page) == 0
    shot(page, "compare")


def test_pair_map_is_coloured_by_overlap_and_linked(page, app_url, feats, mpnet_dir):
    # Bugs: colours from another k or layer; hover ringing one panel only; a click not reaching the server, or
    # listing the neighbours of another text.
    _open(page, app_url)
    page.get_by_role("tab", name="Neighbourhoods").click()
    fa, fb = feats
    nb = es.compare.neighbours(fa[-1], fb[-1], k=10)
    drawn = _pairs(page)
    assert drawn["tag"] == "compare" and drawn["colourBy"] == "overlap" and drawn["n"] == len(TEXTS)
    np.testing.assert_allclose(drawn["values"], nb.overlap, atol=1e-6)

    i = int(nb.movers[0])  # the biggest mover: its neighbourhood differs most
    page.mouse.move(*_point(page, i, "a"))
    page.wait_for_function(f"() => {PAIRS}.dataset.esHover === '{i}'")
    rings = _pairs(page)["rings"]
    assert {(r["panel"], r["index"]) for r in rings if r["colour"] == "#000"} == {("a", i), ("b", i)}

    page.mouse.click(*_point(page, i, "b"))
    page.wait_for_function(f"() => {PAIRS}.dataset.esSelected === '{i}'", timeout=LONG)
    wait_idle(page, LONG)
    rings = _pairs(page)["rings"]
    assert {(r["panel"], r["index"]) for r in rings if r["colour"] == "#dc2626"} == {("a", i), ("b", i)}
    assert {r["index"] for r in rings if r["panel"] == "a" and r["colour"] == "#1b1b1b"} == set(nb.neighbours_a[i])
    assert {r["index"] for r in rings if r["panel"] == "b" and r["colour"] == "#1b1b1b"} == set(nb.neighbours_b[i])
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert re.search(rf"Text {i} \(overlap {nb.overlap[i]:.2f}\)", body)
    assert TEXTS[i] in body and "Neighbours under" in body  # the tables themselves draw on a canvas grid
    assert exception_boxes(page) == 0
    shot(page, "compare_neighbourhoods")


def test_masks_page_measures_encoder_against_decoder(page, app_url, encoder, decoder_model):
    open_page(page, app_url, "masks", "measure=1")
    wait_for_heatmap(page, "h.tag === 'masks_cka:cka' && h.exact", timeout=LONG)
    wait_idle(page, LONG)
    drawn = heatmap_tagged(page, r"^masks_cka:cka$")
    expected = es.compare.layer_similarity(encoder, decoder_model, TEXTS, metric="cka").matrix
    np.testing.assert_allclose(drawn["values"], expected, atol=COLOUR)
    assert exception_boxes(page) == 0
    page.locator("text=Encoder vs decoder, measured").scroll_into_view_if_needed()
    shot(page, "masks_measured")


def test_vision_page_layer_self_similarity(page, app_url):
    open_page(page, app_url, "vision", "layers=1")
    wait_for_heatmap(page, "h.tag === 'vision_layers:cka' && h.exact", timeout=LONG)
    wait_idle(page, LONG)
    drawn = heatmap_tagged(page, r"^vision_layers:cka$")
    diagonal = np.diag(drawn["values"])
    np.testing.assert_allclose(diagonal[1:], 1.0, atol=COLOUR)  # a layer against itself
    # ViT-Ti pools [CLS]: at layer 0 it is the same vector for every image, a constant layer that scores 0.
    assert diagonal[0] < COLOUR
    assert "same vector for every image" in page.locator('[data-testid="stMain"]').inner_text()
    assert exception_boxes(page) == 0
    shot(page, "vision_layers")


def test_atlas_page_colours_by_overlap_with_linked_maps(page, encoder, tmp_path):
    # A server of its own: the atlas folder is a server setting.
    from tests.app.test_atlas_page import TEXTS as ATLAS_TEXTS
    from tests.app.test_atlas_page import write_atlas
    from tests.e2e.conftest import start_server, stop_server

    xa, xb = es.embed(encoder, ATLAS_TEXTS), es.embed(encoder, ATLAS_TEXTS, pooling="cls")
    root = tmp_path / "atlases"
    write_atlas(root / "faq", xa)
    write_atlas(root / "faq_b", xb)
    es.atlas.compare_atlases(root / "faq", root / "faq_b", k=3)
    nb = es.compare.neighbours(xa, xb, k=3)
    proc, url, _ = start_server({"ENCODERSCOPE_ATLAS_DIR": str(root)})
    try:
        open_page(page, url, "atlas", "atlas=faq")
        page.wait_for_function(f"() => {PAIRS} && {PAIRS}.dataset.esPairmap === 'atlas_compare'", timeout=LONG)
        drawn = _pairs(page)
        assert drawn["colourBy"] == "overlap"
        np.testing.assert_allclose(drawn["values"], nb.overlap, atol=1e-6)
        i = int(nb.movers[0])
        page.mouse.move(*_point(page, i, "b"))
        page.wait_for_function(f"() => {PAIRS}.dataset.esHover === '{i}'")
        assert {(r["panel"], r["index"]) for r in _pairs(page)["rings"]} == {("a", i), ("b", i)}
        page.mouse.click(*_point(page, i, "a"))
        page.wait_for_function(f"() => {PAIRS}.dataset.esSelected === '{i}'", timeout=LONG)
        wait_idle(page, LONG)
        rings = _pairs(page)["rings"]
        assert {r["index"] for r in rings if r["panel"] == "b" and r["colour"] == "#1b1b1b"} == set(nb.neighbours_b[i])
        assert exception_boxes(page) == 0
        page.locator("text=Compared with another model").scroll_into_view_if_needed()
        shot(page, "atlas_compare")
    finally:
        stop_server(proc)
