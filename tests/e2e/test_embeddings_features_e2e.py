"""The Embeddings page's Features view in real Chromium, on a real corpus: the first lines of 2,000 standard-library
docstrings, embedded here with the bundled MiniLM and uploaded through the page's own "Precomputed embeddings"
input (vectors.npy + a metadata CSV, so the page trains on exactly these vectors). Features are learned on
request (the compute pool's long lane); then the card as drawn (its label, metrics, the activation histogram's
bars as Plotly holds them, the top-texts table as the grid renders it) is compared with a TopK SAE trained here
by `es.features.train` on the same vectors with the same seed, every number counted here with numpy."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

import encoderscope as es
from encoderscope import settings
from tests.e2e.conftest import exception_boxes, open_page, plot_titled, shot, wait_for_plot, wait_idle
from tests.unit.features_data import STDLIB, stdlib_docs

MORE = ["pprint", "shlex", "queue", "uuid", "configparser", "traceback", "weakref", "zlib", "bz2", "lzma"]
SIZE, K = 64, 4  # the smallest dictionary and k the view offers: the fastest training
TOP = 20  # texts in a feature's card


@pytest.fixture(scope="module")
def corpus(encoder):
    """(texts [N], labels [N], vectors [N, 384] float32) with N the view's minimum corpus."""
    n = settings.get().features_min_sentences
    texts, labels = stdlib_docs(modules=STDLIB + MORE)  # STDLIB alone gives a few lines short of 2,000
    assert len(texts) >= n, f"only {len(texts)} docstring lines; the view needs {n}"
    texts, labels = texts[:n], labels[:n]
    return texts, labels, es.embed(encoder, texts).astype(np.float32)


@pytest.fixture(scope="module")
def trained(corpus):
    """The SAE the page should learn (same vectors, size, k, default seed 0), its codes `[N, K]` and labels."""
    import torch

    texts, _, X = corpus
    # the page trains in the pool's long lane with one thread (cores / workers); the weights are bit-identical for
    # a seed at one thread count, but another count rounds some sums differently and may end on other features
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sae = es.features.train(X, SIZE, K, seed=0)
    finally:
        torch.set_num_threads(threads)
    ids, values = sae.encode(X)
    labels = es.features.describe(sae, X, texts, codes=(ids, values))["label"].tolist()
    return sae, ids, values, labels


def _files(corpus) -> list[dict]:
    texts, labels, X = corpus
    buf = io.BytesIO()
    np.save(buf, X)
    meta = pd.DataFrame({"text": texts, "label": labels}).to_csv(index=False).encode()
    return [{"name": "docstrings.csv", "mimeType": "text/csv", "buffer": meta},
            {"name": "docstrings.npy", "mimeType": "application/octet-stream", "buffer": buf.getvalue()}]


def _slide_to_first(page, label: str, steps: int) -> None:
    """Move a select slider `steps` options to the left (to its first option), with the keyboard."""
    # the range input's accessible name repeats the label (it is labelled by itself and its group)
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text=label).locator("input[type=range]")
    thumb.focus()
    for _ in range(steps):
        thumb.press("ArrowLeft")
    wait_idle(page)


def _metrics(page) -> dict[str, str]:
    found = {}
    for metric in page.locator('[data-testid="stMetric"]').all():
        label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        found[label] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return found


def _grid(page) -> pd.DataFrame:
    """The one data grid on the page as rendered: its accessibility table (the cells drawn on the canvas, with
    their text), columns from the header row."""
    grid = page.locator('[data-testid="stDataFrame"]')
    grid.first.wait_for()  # under load the grid may follow the rest of the card
    assert grid.count() == 1
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stDataFrame\"] td[role=gridcell]').length > 0")
    page.wait_for_timeout(400)  # the accessibility table follows the canvas after a short debounce
    header = grid.locator("thead th").all_inner_texts()
    rows = [row.locator("td").all_inner_texts() for row in grid.locator("tbody tr").all()]
    return pd.DataFrame(rows, columns=header)


def test_features_view_learns_and_draws_the_same_features_as_the_library(page, app_url, corpus, trained):
    # Bugs: another feature's card or another feature's top texts; texts misaligned with their vectors (a row
    # dropped, a shifted index); activations of a different k or seed; the frequency of the picker's list and the
    # card disagreeing; a histogram that counts inactive points or bins differently; training not on these vectors.
    texts, _, X = corpus
    sae, ids, values, labels = trained
    N = len(texts)
    count = np.bincount(ids[values > 0], minlength=SIZE)
    mid = np.flatnonzero((count > TOP) & (count < N // 4))  # a feature with a full top-20 that is not everywhere
    feature = int(mid[np.argmax(count[mid])] if len(mid) else np.argmax(count))
    activation = np.where((ids == feature) & (values > 0), values, 0).max(axis=1)  # [N]
    active = activation > 0
    assert active.sum() == count[feature] > 0

    open_page(page, app_url, "embeddings")
    page.get_by_role("radiogroup", name="View").get_by_role("radio", name="Features").click()
    wait_idle(page)
    page.get_by_text("at least 2,000 sentences").wait_for()  # the example corpus is too small
    page.get_by_text("Precomputed embeddings").click()
    wait_idle(page)
    meta, vectors = _files(corpus)
    uploads = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploads.nth(1).set_input_files(files=[meta])  # metadata first: without vectors the page stops there
    wait_idle(page)
    uploads.nth(0).set_input_files(files=[vectors])
    wait_idle(page)
    page.get_by_text(f"{N:,} vectors of dimension {X.shape[1]} (uploaded)").wait_for()
    # the view chosen before the upload is kept: no 2,000-point projection first
    assert page.locator(".js-plotly-plot").count() == 0

    _slide_to_first(page, "Features", 3)  # 64 128 256 [512]
    _slide_to_first(page, "Active per sentence (k)", 2)  # 4 8 [16] 32
    page.get_by_text(f"Learns {SIZE} features, {K} active per sentence, from these {N:,} vectors").wait_for()
    page.get_by_role("button", name="Learn features").click()
    page.get_by_text(f"{SIZE} features, {K} active per sentence ·").wait_for(timeout=180_000)
    wait_idle(page)

    # the summary line: FVU and dead features of the SAE trained here, counted here
    recon = sae.decode(ids, values).astype(np.float64)
    fvu = ((X - recon) ** 2).sum() / ((X - X.astype(np.float64).mean(axis=0)) ** 2).sum()
    summary = page.get_by_text(f"{SIZE} features, {K} active per sentence ·").inner_text()
    assert f"leaves {fvu:.1%} of the variance unexplained" in summary, summary
    assert f"· {int((count == 0).sum()):,} never active" in summary, summary

    # find the feature by its number, then pick it: the picker's entry carries its label and frequency
    search = page.get_by_label("Search features by keyword (or a feature number)")
    search.fill(str(feature))
    search.press("Enter")
    wait_idle(page)
    entry = f"#{feature} · {labels[feature]} · {100 * count[feature] / N:.2f} %"
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Feature").click()
    page.get_by_role("option", name=entry, exact=True).click()
    # the card of the feature picked (the first feature's card, drawn before, has an 'active in' histogram too)
    page.locator('[data-testid="stMarkdown"]').filter(has_text=f"Feature {feature}: ").first.wait_for()
    wait_idle(page)
    wait_for_plot(page, "(gd.layout.title.text || '').includes('active in')")
    assert exception_boxes(page) == 0

    markdown = " ".join(page.locator('[data-testid="stMarkdown"]').all_inner_texts())
    assert f"Feature {feature}: {labels[feature]}" in markdown
    assert _metrics(page) == {"Active in": f"{100 * count[feature] / N:.2f} % of points",
                              "Mean activation": f"{activation[active].mean():.3f}",
                              "Strongest": f"{activation.max():.3f}"}
    hist = plot_titled(page, "active in")
    assert hist["title"].endswith(f"active in {count[feature]:,} of {N:,} points")
    want, edges = np.histogram(activation[active], bins=30)
    (bars,) = hist["traces"]
    np.testing.assert_array_equal(bars["y"], want)
    np.testing.assert_allclose(bars["x"], (edges[:-1] + edges[1:]) / 2, rtol=1e-6)

    top = np.lexsort((np.arange(N), -activation))[:TOP]  # strongest first, ties by row
    grid = _grid(page)
    assert grid.columns.tolist() == ["id", "activation", "text"]
    assert grid["id"].astype(int).tolist() == top.tolist()
    np.testing.assert_allclose(grid["activation"].astype(float), activation[top], atol=1e-4)
    assert grid["text"].tolist() == [texts[i] for i in top]
    shot(page, "embeddings_features")
    assert re.search(rf"Its top {TOP} texts", markdown)
