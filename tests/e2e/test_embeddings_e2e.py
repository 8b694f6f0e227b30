"""Real browser: the embeddings page projects the example corpus and answers a query."""

from tests.e2e.conftest import exception_boxes, open_page, shot, wait_for_chart, wait_idle


def test_embeddings_page(page, app_url):
    open_page(page, app_url, "embeddings")
    wait_for_chart(page)  # the first UMAP waits for the background warm-up
    assert page.locator(".js-plotly-plot .scatterlayer .point").count() >= 43
    box = page.get_by_placeholder("e.g. How do I bake bread?")
    box.fill("a flying animal that hunts insects at night")
    box.press("Enter")
    wait_idle(page)
    page.get_by_text("Nearest neighbours").wait_for()
    assert "bat" in page.locator('[data-testid="stTable"]').first.inner_text().lower()
    assert exception_boxes(page) == 0
    shot(page, "embeddings")
    page.get_by_role("tab", name="One word in context").click()
    page.wait_for_timeout(1500)
    shot(page, "embeddings_word")
