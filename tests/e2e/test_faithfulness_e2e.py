"""Real browser: the deletion test beside "Why are these close?" draws the library's curves (issue 23).

The curves are read from the data Plotly drew (`plots`: `gd._fullData`, typed arrays decoded) and compared with
`es.faithfulness.similarity` computed here. Streamlit's Plotly element rewrites `layout.title.text` to `<b>…</b>`
in the browser, so a condition on it uses `includes`, never `startsWith`: the old `startsWith('Deletion test')`
never matched, which read as "the chart never appears" while it was drawn all along.
"""

import numpy as np

import encoderscope as es
from tests.e2e.conftest import SHOTS, exception_boxes, open_page, plot_titled, plots, wait_for_plot, wait_idle

A = "A man is playing a guitar on stage."  # the view's default typed pair (components/embeddings/why_close.py)
B = "Someone performs music with an instrument."
DELETION = "((gd.layout.title && gd.layout.title.text) || '').includes('Deletion test')"


def test_deletion_curve_beside_why_are_these_close(page, app_url, encoder):
    page.set_viewport_size({"width": 1400, "height": 3400})
    open_page(page, app_url, "embeddings")
    view = page.get_by_role("radiogroup", name="View").get_by_role("radio", name="Why are these close?")
    view.wait_for(timeout=300_000)  # drawn once the corpus is embedded
    view.click()
    wait_idle(page)
    page.get_by_text("Two texts of my own").click()
    wait_for_plot(page, "((gd.layout.title && gd.layout.title.text) || '').includes('Token × token')")
    assert not [p for p in plots(page) if p["title"].startswith("Deletion test")]  # nothing tested until asked
    page.get_by_text("Can I trust this explanation? (deletion test)").click()
    wait_for_plot(page, DELETION, 300_000)
    page.get_by_text("Deletion curves (CSV)").scroll_into_view_if_needed()
    traces = {t["name"]: t for t in plot_titled(page, "^Deletion test: the cosine as tokens go$")["traces"]}
    expected = es.faithfulness.similarity(encoder, es.explain_similarity(encoder, A, B), side="b", steps=10, seeds=5)
    line = traces[f"explanation (area {expected.area_deletion:.3f})"]
    np.testing.assert_array_equal(line["x"], expected.counts)
    np.testing.assert_allclose(line["y"], expected.deletion, atol=1e-5)
    np.testing.assert_allclose(traces[f"random order (area {expected.area_random:.3f})"]["y"], expected.random,
                               atol=1e-5)
    np.testing.assert_allclose(traces["random ± sd"]["y"], expected.random + expected.random_sd, atol=1e-5)
    pace = "faster" if expected.beats_random else "slower"
    assert page.get_by_text(f"lowers the cosine {pace} than random removal").count() == 1
    assert exception_boxes(page) == 0
    chart = page.locator(".js-plotly-plot").filter(has_text="Deletion test").bounding_box()
    page.screenshot(path=str(SHOTS / "faithfulness_embeddings.png"),
                    clip={"x": 0, "y": max(chart["y"] - 700, 0), "width": 1400, "height": 1200})
    assert chart["height"] > 250 and chart["width"] > 400  # drawn at a readable size, not collapsed
