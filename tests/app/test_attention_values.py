"""The attention page draws the library's numbers: every map's payload decoded here and compared with `es.*`
results computed here.

The maps are the canvas heatmap component; `tests/app/conftest.py` decodes its binary payload independently of
the page code (`heatmap`, `heatmap_values`, `main_heatmap`). The page may open on any layer/head (it picks a
"best" head for its default sentence), so each test sets the layer and head itself, through the URL or the
session state the page keeps them in (`layer`: the slider; `head`: set by the map's head buttons).
"""

import numpy as np
import pytest

import encoderscope as es
from encoderscope.tokens import clean_token
from tests.app.conftest import heatmap, heatmap_values, main_heatmap, no_exceptions, opened

TEXT = "The riverbank <b>flooded</b> & fishermen waited."
EXACT = 1 / 65535 + 1e-6  # the low bytes: uint16 over 0..1
COLOUR = 1 / 255  # the colour byte alone (what the first draw shows)


@pytest.fixture(scope="module")
def res(encoder):
    return es.attention(encoder, TEXT)


@pytest.fixture(scope="module")
def page():
    return opened("attention", {"text": TEXT, "layer": "2", "head": "3"})


def _set(at, layer=None, head=None, merge=None, hide=None, view=None):
    if layer is not None:
        at.slider(key="layer").set_value(layer)
    if head is not None:
        at.session_state["head"] = head
    if merge is not None:
        at.toggle(key="merge").set_value(merge)
    if hide is not None:
        at.toggle(key="hide").set_value(hide)
    if view is not None:
        at.radio(key="attn_view").set_value(view)
    at.run()
    no_exceptions(at)
    return at


def _expected(weights: np.ndarray, layer: int, view: str) -> np.ndarray:
    return weights[layer].mean(axis=0) if view == "mean" else weights[layer, int(view)]


def test_url_layer_and_head_are_drawn(page, res):
    # Bug: the URL's layer/head ignored, or the map drawn from another head / a transposed matrix.
    layer, view, values, header = main_heatmap(page)
    assert (layer, view) == (2, "3") and int(page.slider(key="layer").value) == 2
    np.testing.assert_allclose(values, res.weights[2, 3], atol=EXACT)
    first, blocks = heatmap(page, "main_heatmap")
    np.testing.assert_allclose(heatmap_values(first, blocks, "3", exact=False), res.weights[2, 3], atol=COLOUR)
    assert not np.allclose(res.weights[2, 3], res.weights[2, 3].T, atol=1e-3)  # so a transpose would fail
    assert header["zmin"] == 0 and header["zmax"] == 1  # the fixed 0-1 scale


def test_first_payload_is_the_selected_head_only(page, res):
    # Bug: the first draw waiting for the whole layer (every head in the first payload).
    header, blocks = heatmap(page, "main_heatmap")
    assert list(blocks) == [f"hi:{header['view']}"]
    assert blocks[f"hi:{header['view']}"].size == len(res.tokens) ** 2


def test_every_head_of_the_layer_is_in_the_store(page, res):
    # Bug: a head switched in the browser showing another head's weights (off-by-one in the store's order), or a
    # "mean" that averages over queries or layers instead of heads.
    layer, _, _, header = main_heatmap(page)
    store_header, store = heatmap(page, "main_heatmap_store")
    assert header["views"] == [*map(str, range(res.num_heads)), "mean"]
    for view in header["views"]:
        np.testing.assert_allclose(heatmap_values(header, store, view), _expected(res.weights, layer, view),
                                   atol=EXACT, err_msg=f"view {view}")


def test_store_goes_once_per_layer(page, res):
    # Bug: every rerun re-sending the layer's store (7 MB at 512 tokens), e.g. the one a browser-side head change
    # causes; or a layer change not sending the new layer's.
    _set(page, layer=1)
    assert heatmap(page, "main_heatmap_store")[0]["id"] == heatmap(page, "main_heatmap")[0]["id"]
    _set(page, head=6)
    assert heatmap(page, "main_heatmap_store") is None
    layer, view, values, _ = main_heatmap(page)  # the store the browser kept still serves it
    np.testing.assert_allclose(values, _expected(res.weights, 1, "6"), atol=EXACT)
    _set(page, layer=2, head=3)


def test_labels_are_the_tokens_once(page, res):
    # Bug: labels from another tokenisation, or duplicates merged ("the" twice as one column).
    _, _, _, header = main_heatmap(page)
    assert header["rows"] == [clean_token(t) for t in res.tokens]
    assert header.get("cols") is None  # sent once: the columns are the rows
    assert "<b>" in "".join(header["rows"]) or "<" in header["rows"]  # raw text: the canvas draws it as text


def test_layer_slider_changes_the_matrix(page, res):
    # Bug: the slider updates the URL but the drawn matrix (or the store) stays the previous layer's.
    _set(page, layer=4)
    layer, view, values, _ = main_heatmap(page)
    assert layer == 4
    np.testing.assert_allclose(values, _expected(res.weights, 4, view), atol=EXACT)
    assert np.abs(_expected(res.weights, 4, view) - _expected(res.weights, 2, view)).max() > 0.05
    assert page.query_params["layer"] in ("4", ["4"])


@pytest.mark.parametrize("head", [0, 11, "mean"])
def test_head_is_drawn_and_linked(page, res, head):
    # Bug: off-by-one between the page's head and the weights' head axis, or the URL not following.
    _set(page, head=head)
    layer, view, values, _ = main_heatmap(page)
    assert view == str(head)
    np.testing.assert_allclose(values, _expected(res.weights, layer, view), atol=EXACT)
    assert page.query_params["head"] in (str(head), [str(head)])


def test_all_heads_grid_cells(page, res):
    # Bug: thumbnails placed at the wrong (layer, head), transposed, or a "mean" column that is not the mean.
    _set(page, view="All heads")
    header, blocks = heatmap(page, "grid")
    L, H, T, _ = res.weights.shape
    assert (header["layers"], header["heads"], header["side"]) == (L, H, T)  # short text: one cell per token
    grid = blocks["hi:grid"].reshape(L, H + 1, T, T).astype(float)
    for layer in range(L):
        for head in range(H + 1):
            w = res.weights[layer].mean(axis=0) if head == H else res.weights[layer, head]
            # Each thumbnail is its head's weights scaled to its own maximum (1..255).
            np.testing.assert_allclose((grid[layer, head] - 1) / 254, w / w.max(), atol=0.6 / 254)


def test_views_are_computed_only_when_shown(page):
    # Bug: rollout, focus and head statistics computed (and sent) on every run, whichever view is open.
    _set(page, view="All heads")
    assert heatmap(page, "rollout") is None and heatmap(page, "focus_token_fig") is None
    assert not page.dataframe


def test_rollout(page, res):
    # Bug: rollout of a different result (e.g. before the display options), or of one layer only.
    _set(page, merge=False, hide=False, view="Rollout")
    header, blocks = heatmap(page, "rollout")
    expected = es.rollout(res)
    span = header["zmax"] - header["zmin"]
    np.testing.assert_allclose(heatmap_values(header, blocks, "rollout"), expected, atol=span / 65535 + 1e-6)
    assert header["zmax"] == pytest.approx(float(expected.max()), rel=1e-6)


def test_token_focus(page, res):
    # Bug: the focus row taken from another token (index shift) or a column instead of a row.
    index = res.tokens.index("fishermen")
    _set(page, merge=False, hide=False, view="Token focus")
    page.selectbox(key="focus_token").set_value(index).run()
    no_exceptions(page)
    header, blocks = heatmap(page, "focus_token_fig")
    np.testing.assert_allclose(heatmap_values(header, blocks, header["view"]), es.token_focus(res, index),
                               atol=EXACT)
    assert "fishermen" in header["title"] and header["outline_col"] == index
    assert header["rows"] == [f"layer {i}" for i in range(res.num_layers)]


def test_head_summary(page, res):
    # Bug: statistics of another result (after merging) or a table missing heads.
    _set(page, view="Head summary")
    table = page.dataframe[0].value
    expected = es.head_stats(res)
    assert len(table) == res.num_layers * res.num_heads
    np.testing.assert_allclose(table["entropy"].to_numpy(float), expected["entropy"].round(3), atol=1e-9)
    _set(page, view="All heads")


def test_merge_word_pieces(page, res):
    # Bug: the toggle changes the labels but not the weights, or merges by summing queries instead of averaging.
    _set(page, merge=True, hide=False, head=5, view="Rollout")
    layer, view, values, header = main_heatmap(page)
    merged = es.merge_word_pieces(res)
    assert len(merged.tokens) < len(res.tokens)  # "river ##bank" became one word
    assert header["rows"] == [clean_token(t) for t in merged.tokens]
    np.testing.assert_allclose(values, _expected(merged.weights, layer, view), atol=EXACT)
    roll_header, roll = heatmap(page, "rollout")
    np.testing.assert_allclose(heatmap_values(roll_header, roll, "rollout"), es.rollout(merged), atol=2e-5)


def test_hide_special_tokens(page, res):
    # Bug: special tokens hidden from the labels but their columns kept (rows no longer sum to 1).
    _set(page, merge=False, hide=True, head=7, view="Rollout")
    layer, view, values, header = main_heatmap(page)
    dropped = es.drop_special(res)
    assert header["rows"] == [clean_token(t) for t in dropped.tokens]
    np.testing.assert_allclose(values, _expected(dropped.weights, layer, view), atol=EXACT)
    roll_header, roll = heatmap(page, "rollout")
    np.testing.assert_allclose(heatmap_values(roll_header, roll, "rollout"), es.rollout(dropped), atol=2e-5)


def test_merge_and_hide_together(page, res):
    # Bug: one option silently overriding the other. The page merges word pieces first, then hides specials.
    _set(page, merge=True, hide=True, head="mean")
    layer, view, values, _ = main_heatmap(page)
    both = es.drop_special(es.merge_word_pieces(res))
    assert view == "mean"
    np.testing.assert_allclose(values, both.weights[layer].mean(axis=0), atol=EXACT)
    _set(page, merge=False, hide=False, view="All heads")


def test_sentence_pair_direction_filter(encoder):
    # Bug: the A→B filter keeping the wrong block, or the sentence-B divider drawn at the wrong token.
    text, pair = "The bank was closed.", "It opens Monday."
    res = es.attention(encoder, text, pair)
    at = opened("attention", {"text": text, "pair": pair, "layer": "1", "head": "5"})
    at.radio(key="direction").set_value("A → B only").run()
    no_exceptions(at)
    layer, view, values, header = main_heatmap(at)
    seq = [-1 if s is None else s for s in res.sequence_ids]
    assert header["keep"] == "A→B" and header["seq"] == seq
    assert header["divider"] == res.sentence_b_start
    np.testing.assert_allclose(values, _expected(res.weights, layer, view), atol=EXACT)
    at.radio(key="direction").set_value("all pairs").run()
    assert heatmap(at, "main_heatmap")[0]["keep"] is None
