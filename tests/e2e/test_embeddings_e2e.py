"""Real browser: the embeddings page projects the example corpus, answers a query, follows a word across
layers, and explains bad input instead of failing."""

from tests.e2e.conftest import exception_boxes, open_page, shot, wait_for_chart, wait_idle


def test_embeddings_page(page, app_url):
    open_page(page, app_url, "embeddings")
    wait_for_chart(page)  # the first UMAP waits for the background warm-up
    assert page.locator(".js-plotly-plot .scatterlayer .point").count() >= 43
    box = page.get_by_placeholder("e.g. How do I bake bread?")
    box.fill("a flying animal that hunts insects at night")
    box.press("Enter")
    wait_idle(page)
    page.get_by_text("Nearest neighbours", exact=True).wait_for()
    assert "bat" in page.locator('[data-testid="stTable"]').first.inner_text().lower()
    assert exception_boxes(page) == 0
    shot(page, "embeddings")

    page.get_by_role("radiogroup", name="View").get_by_role("radio", name="One word in context").click()
    wait_idle(page)
    page.get_by_text("12 occurrence(s)").wait_for()
    charts = page.locator(".js-plotly-plot")
    charts.nth(1).wait_for()  # the word's scatter and the self-similarity chart
    # only the view shown is drawn: the map is gone, not hidden (the old view's element leaves once the rerun ends)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length === 2", timeout=60_000)
    assert charts.count() == 2
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stTable\"]').length === 0", timeout=60_000)
    assert exception_boxes(page) == 0
    shot(page, "embeddings_word")


def test_embeddings_bad_input(page, app_url):
    open_page(page, app_url, "embeddings")
    page.get_by_text("Your sentences").click()
    wait_idle(page)
    box = page.get_by_label("Sentences (one per line)")
    box.fill("same\nsame\nsame")
    box.press("Control+Enter")
    wait_idle(page)
    page.get_by_text("same place").wait_for()
    page.get_by_text("showing PCA instead").wait_for()  # the projection notice comes later in the same rerun
    assert exception_boxes(page) == 0
    shot(page, "embeddings_duplicates")

    page.get_by_text("Precomputed embeddings").click()
    wait_idle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(
        files=[{"name": "bad.npy", "mimeType": "application/octet-stream", "buffer": b"\x93NUMPY not really"}]
    )
    wait_idle(page)
    page.get_by_text("Could not read the .npy file").wait_for()
    assert exception_boxes(page) == 0
    shot(page, "embeddings_bad_npy")
