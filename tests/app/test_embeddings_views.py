"""The Embeddings page's structure (issue 24): one view at a time, so opening the page computes only the map;
the projection settings survive a switch of view; a pool timeout in any of its computations reads as the pool's
own message in the page, and the rest of the page is still drawn."""

import time

from components import pool as pool_glue
from encoderscope import compute
from tests.app.conftest import figures, messages, no_exceptions, opened
from tests.app.conftest import show as show_view

SENTENCES, WORD, WHY = "Sentences", "One word in context", "Why are these close?"


def _typed(at, tag: str):
    """A corpus no other test embeds (so nothing comes from the caches), with "bank" in it."""
    at.radio(key="source").set_value("Your sentences").run()
    lines = [f"The {tag} bank sentence number {i} about rivers and money." for i in range(8)]
    at.text_area(key="sentences").set_value("\n".join(lines)).run()
    no_exceptions(at)
    return at


def show(at, view: str):
    """Show one of the page's views (only the view shown runs); the page's tests share it."""
    return show_view(at, "emb_view", view)


def test_only_the_view_shown_computes(jobs):
    # Bug caught: tabs (or any layout that runs every view) computing the word's layers, the anisotropy baseline
    # (22 jobs of 2.8 s in the load test) and the explanation on every open of the page, for nobody.
    at = opened("embeddings", {})
    jobs()
    _typed(at, "lazy-view")
    word_jobs, why_jobs = {"word occurrences", "anisotropy"}, {"explanation"}
    opened_jobs = jobs()
    assert {"embedding", "projection"} <= opened_jobs and not opened_jobs & (word_jobs | why_jobs)
    assert "“bank” at layer" not in str([f["layout"].get("title") for f in figures(at)])
    show(at, WORD)
    word = jobs()
    assert word_jobs <= word and not word & why_jobs
    assert any("self-similarity" in d.get("name", "") for f in figures(at) for d in f["data"])
    show(at, WHY)
    why = jobs()
    assert why_jobs <= why and not why & word_jobs
    show(at, SENTENCES)
    assert jobs() == set()  # back to the map: every result comes from the caches


def test_projection_settings_survive_a_switch_of_view():
    # Bug caught: a hidden view's widgets forgotten (Streamlit drops the state of widgets not drawn), so the map
    # came back as UMAP after a look at one word, and the word view ignored the method the user chose.
    at = opened("embeddings", {})
    at.selectbox(key="method").set_value("pca").run()
    show(at, WORD)
    titles = [(f["layout"].get("title") or {}).get("text", "") for f in figures(at)]
    assert any(t.startswith("“bank” at layer") and t.endswith("(PCA)") for t in titles), titles
    show(at, SENTENCES)
    assert at.selectbox(key="method").value == "pca"
    assert figures(at)[0]["layout"]["xaxis"]["title"]["text"] == "PC1"


class _Strict(compute.Pool):
    """A pool whose 0.5 s limit holds only for the kinds under test (the page's other jobs may take their time on a
    busy machine)."""

    def submit(self, kind, *args, **kwargs):
        if kind not in ("k-means", "embedding", "anisotropy"):
            kwargs["timeout"] = None
        return super().submit(kind, *args, **kwargs)


def _slow(fn, seconds):
    def slow(*args, **kwargs):
        time.sleep(seconds)
        return fn(*args, **kwargs)

    return slow


def test_a_pool_timeout_reads_as_its_own_message(monkeypatch):
    # Bug caught (issue 24, 12a): k-means, the query's embedding and the anisotropy baseline computed outside
    # ui.guard, so a pool timeout showed a generic error box (or stopped the page) instead of saying what happened.
    from encoderscope import clustering, embeddings

    at = _typed(opened("embeddings", {}), "timeout")  # embedded and projected with the server's pool
    short = _Strict(4, timeout=0.5)
    monkeypatch.setattr(pool_glue, "shared", lambda: short)
    monkeypatch.setattr(clustering, "kmeans", _slow(clustering.kmeans, 2))
    monkeypatch.setattr(embeddings, "embed", _slow(embeddings.embed, 2))
    monkeypatch.setattr(embeddings, "anisotropy", _slow(embeddings.anisotropy, 2))
    try:
        at.selectbox(key="colour").set_value("k-means cluster").run()
        no_exceptions(at)
        assert "This k-means took more than 0.5 s, the limit on this server" in messages(at)
        assert {d["name"] for d in figures(at)[0]["data"]} == {"(typed)"}  # the map, in its label colours
        at.text_input(key="query").set_value("a timed-out query about money").run()
        no_exceptions(at)
        assert "This embedding took more than 0.5 s" in messages(at)
        assert figures(at) and not at.table  # the map without neighbours
        show(at, WORD)
        assert "This anisotropy took more than 0.5 s" in messages(at)
        assert "Could not" not in messages(at)
    finally:
        short.shutdown()
