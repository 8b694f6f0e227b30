"""Real browser: the deletion test beside "Why are these close?" draws the library's curves (issue 23).

The curves are read from the data Plotly drew and compared with `es.faithfulness.similarity` computed here.
"""

import numpy as np
import pytest

import encoderscope as es
from tests.e2e.conftest import SHOTS, exception_boxes, open_page, wait_for_chart, wait_for_plot, wait_idle

A = "A man is playing a guitar on stage."  # the view's default typed pair (components/embeddings/why_close.py)
B = "Someone performs music with an instrument."

_CURVES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(gd => !gd.closest('[data-stale="true"]') && ((gd.layout.title || {}).text || '').startsWith('Deletion test'))
  .map(gd => gd.data.map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)})))"""


# any drawn deletion chart, stale container or not: the traces of the last one
_ANY_CURVE_JS = """() => { const gds = [...document.querySelectorAll('.js-plotly-plot')]
  .filter(gd => gd.layout && ((gd.layout.title || {}).text || '').startsWith('Deletion test'));
  return gds.length ? gds[gds.length - 1].data.map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)})) : null; }"""


@pytest.mark.xfail(
    strict=True,
    reason="known defect (issue 23, open): under AppTest the chart and its CSV are drawn and the server finishes "
    "the job in about 1 s, but in Chromium no 'Deletion test' plotly chart appears within 300 s (the CSV button "
    "below it does); strict, so this test fails loudly once the chart renders and the mark must go",
)
def test_deletion_curve_beside_why_are_these_close(page, app_url, encoder):
    page.set_viewport_size({"width": 1400, "height": 3400})
    open_page(page, app_url, "embeddings")
    wait_for_chart(page)
    page.get_by_role("tab", name="Why are these close?").click()
    wait_idle(page)
    page.get_by_text("Two texts of my own").click()
    wait_for_plot(page, "((gd.layout.title && gd.layout.title.text) || '').includes('Token × token')")
    assert not page.evaluate(_CURVES_JS)  # nothing tested until asked
    page.get_by_text("Can I trust this explanation? (deletion test)").click()
    csv = page.get_by_text("Deletion curves (CSV)")  # drawn after the chart: bring the chart into view
    csv.wait_for(timeout=300_000)
    csv.scroll_into_view_if_needed()
    page.wait_for_function(_ANY_CURVE_JS, timeout=300_000)
    wait_idle(page)
    drawn = page.evaluate(_ANY_CURVE_JS)
    traces = {t["name"]: t for t in drawn}
    expected = es.faithfulness.similarity(encoder, es.explain_similarity(encoder, A, B), side="b", steps=10, seeds=5)
    line = next(t for name, t in traces.items() if name.startswith("explanation (area"))
    np.testing.assert_array_equal(line["x"], expected.counts)
    np.testing.assert_allclose(line["y"], expected.deletion, atol=1e-5)
    band = traces["random ± sd"]["y"]
    np.testing.assert_allclose(band, expected.random + expected.random_sd, atol=1e-5)
    pace = "faster" if expected.beats_random else "slower"
    assert page.get_by_text(f"lowers the cosine {pace} than random removal").count() == 1
    assert exception_boxes(page) == 0
    chart = page.locator(".js-plotly-plot").filter(has_text="Deletion test").bounding_box()
    page.screenshot(path=str(SHOTS / "faithfulness_embeddings.png"),
                    clip={"x": 0, "y": max(chart["y"] - 700, 0), "width": 1400, "height": 1200})
    assert chart["height"] > 250 and chart["width"] > 400  # drawn at a readable size, not collapsed
    assert pytest.approx(expected.deletion[0], abs=1e-5) == line["y"][0]
