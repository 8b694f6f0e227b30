"""The attention page draws the library's numbers: every figure compared with `es.*` results computed here.

The page may open on any layer/head (it picks a "best" head for its default sentence), so each test sets the
layer and head itself, through the URL or the widgets, and reads the current ones back from the widgets.
"""

import html

import numpy as np
import pytest

import encoderscope as es
from tests.app.conftest import array, figures, no_exceptions, opened

TEXT = "The riverbank <b>flooded</b> & fishermen waited."
TOL = 1e-6


@pytest.fixture(scope="module")
def res(encoder):
    return es.attention(encoder, TEXT)


@pytest.fixture(scope="module")
def page():
    at = opened("attention", {"text": TEXT, "layer": "2", "head": "3"})
    return at


def _view(at) -> tuple[int, int | str]:
    """The layer and head the page's widgets say are shown."""
    return int(at.slider(key="layer").value), at.select_slider(key="head").value


def _figure(at, test) -> dict:
    found = [f for f in figures(at) if test(f)]
    assert len(found) == 1, f"{len(found)} figures match"
    return found[0]


def _main(at) -> dict:
    return figures(at)[0]


def _title(fig) -> str:
    return (fig["layout"].get("title") or {}).get("text", "")


def _grid(at) -> dict:
    return _figure(at, lambda f: (f["layout"].get("xaxis", {}).get("ticktext") or [""])[-1] == "mean")


def _rollout(at) -> dict:
    return _figure(at, lambda f: "rollout" in _title(f).lower())


def _focus(at) -> dict:
    return _figure(at, lambda f: "context" in _title(f))


def _set(at, layer=None, head=None, merge=None, hide=None):
    if layer is not None:
        at.slider(key="layer").set_value(layer)
    if head is not None:
        at.select_slider(key="head").set_value(head)
    if merge is not None:
        at.toggle(key="merge").set_value(merge)
    if hide is not None:
        at.toggle(key="hide").set_value(hide)
    at.run()
    no_exceptions(at)
    return at


def _escaped(tokens: list[str]) -> list[str]:
    """Tick text as the user must see it: the token, HTML-escaped (WordPiece tokens need no other cleaning)."""
    return [html.escape(t, quote=False) for t in tokens]


def test_url_layer_and_head_are_drawn(page, res):
    # Bug: the URL's layer/head ignored, or the heatmap drawn from another head / a transposed matrix.
    assert _view(page) == (2, 3)
    z = array(_main(page)["data"][0]["z"])
    np.testing.assert_allclose(z, res.weights[2, 3], atol=TOL)
    assert not np.allclose(res.weights[2, 3], res.weights[2, 3].T, atol=1e-3)  # so a transpose would fail


def test_tick_labels_are_the_escaped_tokens(page, res):
    # Bug: labels from another tokenisation, merged duplicates, or raw "<b>" reaching plotly's HTML renderer.
    layout = _main(page)["layout"]
    expected = _escaped(res.tokens)
    assert layout["xaxis"]["ticktext"] == expected and layout["yaxis"]["ticktext"] == expected
    assert layout["xaxis"]["tickvals"] == list(range(len(res.tokens)))
    assert {"&lt;", "&gt;", "&amp;"} <= set(expected)


def test_layer_slider_changes_the_matrix(page, res):
    # Bug: the slider updates the title/URL but the drawn matrix stays the previous layer's.
    _, head = _view(page)
    _set(page, layer=4)
    layer, head = _view(page)
    assert layer == 4
    np.testing.assert_allclose(array(_main(page)["data"][0]["z"]), res.weights[4, head], atol=TOL)
    assert np.abs(res.weights[4, head] - res.weights[2, head]).max() > 0.05  # the two layers really differ


@pytest.mark.parametrize("head", [0, 11])
def test_head_slider_picks_that_head(page, res, head):
    # Bug: off-by-one between the head slider and the weights' head axis.
    _set(page, head=head)
    layer, shown = _view(page)
    assert shown == head
    np.testing.assert_allclose(array(_main(page)["data"][0]["z"]), res.weights[layer, head], atol=TOL)


def test_mean_is_the_mean_over_heads(page, res):
    # Bug: "mean" averaging over layers or queries, or showing head 0.
    _set(page, head="mean")
    layer, head = _view(page)
    assert head == "mean"
    np.testing.assert_allclose(array(_main(page)["data"][0]["z"]), res.weights[layer].mean(axis=0), atol=TOL)


def test_all_heads_grid_cells(page, res):
    # Bug: thumbnails placed at the wrong (layer, head), transposed, or a "mean" column that is not the mean.
    z = array(_grid(page)["data"][0]["z"]).astype(float)
    L, H, T, _ = res.weights.shape
    cell = T + 1  # short text: one grid cell per token, a blank line between thumbnails
    assert z.shape == (L * cell, (H + 1) * cell)
    for layer in range(L):
        for head in range(H + 1):
            w = res.weights[layer].mean(axis=0) if head == H else res.weights[layer, head]
            thumb = z[layer * cell : layer * cell + T, head * cell : head * cell + T]
            # Each thumbnail is its head's weights scaled to its own maximum (1..255).
            np.testing.assert_allclose((thumb - 1) / 254, w / w.max(), atol=0.6 / 254)
    assert not z[T :: cell].any() and not z[:, T :: cell].any()  # the separators are blank


def test_rollout_figure(page, res):
    # Bug: rollout of a different result (e.g. before the display options), or of one layer only.
    _set(page, merge=False, hide=False, head=1)
    np.testing.assert_allclose(array(_rollout(page)["data"][0]["z"]), es.rollout(res), atol=TOL)


def test_token_focus(page, res):
    # Bug: the focus row taken from another token (index shift) or a column instead of a row.
    index = res.tokens.index("fishermen")
    _set(page, merge=False, hide=False)
    page.selectbox(key="focus_token").set_value(index).run()
    no_exceptions(page)
    fig = _focus(page)
    np.testing.assert_allclose(array(fig["data"][0]["z"]), es.token_focus(res, index), atol=TOL)
    assert "fishermen" in _title(fig)


def test_merge_word_pieces(page, res):
    # Bug: the toggle changes the labels but not the weights, or merges by summing queries instead of averaging.
    _set(page, merge=True, hide=False, head=5)
    layer, head = _view(page)
    merged = es.merge_word_pieces(res)
    assert len(merged.tokens) < len(res.tokens)  # "river ##bank" became one word
    fig = _main(page)
    assert fig["layout"]["xaxis"]["ticktext"] == _escaped(merged.tokens)
    np.testing.assert_allclose(array(fig["data"][0]["z"]), merged.weights[layer, head], atol=TOL)
    np.testing.assert_allclose(array(_rollout(page)["data"][0]["z"]), es.rollout(merged), atol=TOL)


def test_hide_special_tokens(page, res):
    # Bug: special tokens hidden from the labels but their columns kept (rows no longer sum to 1).
    _set(page, merge=False, hide=True, head=7)
    layer, head = _view(page)
    dropped = es.drop_special(res)
    fig = _main(page)
    assert fig["layout"]["xaxis"]["ticktext"] == _escaped(dropped.tokens)
    np.testing.assert_allclose(array(fig["data"][0]["z"]), dropped.weights[layer, head], atol=TOL)
    np.testing.assert_allclose(array(_rollout(page)["data"][0]["z"]), es.rollout(dropped), atol=TOL)


def test_merge_and_hide_together(page, res):
    # Bug: one option silently overriding the other. The page merges word pieces first, then hides specials.
    _set(page, merge=True, hide=True, head="mean")
    layer, _ = _view(page)
    both = es.drop_special(es.merge_word_pieces(res))
    np.testing.assert_allclose(array(_main(page)["data"][0]["z"]), both.weights[layer].mean(axis=0), atol=TOL)
    _set(page, merge=False, hide=False)


def test_sentence_pair_direction_filter(encoder):
    # Bug: the A→B filter keeping the wrong block, or the sentence-B divider drawn at the wrong token.
    text, pair = "The bank was closed.", "It opens Monday."
    res = es.attention(encoder, text, pair)
    at = opened("attention", {"text": text, "pair": pair, "layer": "1", "head": "5"})
    at.radio(key="direction").set_value("A → B only").run()
    no_exceptions(at)
    layer, head = _view(at)
    fig = _main(at)
    z = array(fig["data"][0]["z"])
    seq = np.array([-1 if s is None else s for s in res.sequence_ids])
    keep = (seq[:, None] == 0) & (seq[None, :] == 1)
    assert np.array_equal(np.isfinite(z), keep)
    np.testing.assert_allclose(z[keep], res.weights[layer, head][keep], atol=TOL)
    lines = {s["x0"] for s in fig["layout"]["shapes"] if s["type"] == "line" and s["x0"] == s["x1"]}
    assert lines == {res.sentence_b_start - 0.5}
