"""The attention page's Query · key view: its maps and table decoded and compared with `es.query_key` and
`es.attention` computed here."""

import numpy as np
import pytest

import encoderscope as es
from tests.app.conftest import heatmap, heatmap_values, messages, no_exceptions, opened

TEXT = "The bank of the river was steep, so we fished from the bank."
LAYER, HEAD = 2, 3


@pytest.fixture(scope="module")
def qk(encoder):
    return es.query_key(encoder, TEXT, LAYER, HEAD)


@pytest.fixture(scope="module")
def page(qk):
    at = opened("attention", {"text": TEXT, "layer": str(LAYER), "head": str(HEAD)})
    at.radio(key="attn_view").set_value("Query · key").run()
    no_exceptions(at)
    return at


def _map(at, key: str) -> tuple[dict, np.ndarray]:
    header, blocks = heatmap(at, key)
    return header, heatmap_values(header, blocks, header["view"])


def _close(header: dict, values: np.ndarray, expected: np.ndarray) -> None:
    span = header["zmax"] - header["zmin"]
    assert header["zmin"] == -header["zmax"]  # diverging, centred on 0
    np.testing.assert_allclose(values, expected, atol=span / 65535 + 1e-6)


def test_query_keys_and_products_of_the_chosen_token(page, qk):
    # Bug: products of another query row (index shift), keys transposed, or the scale left out.
    i = qk.tokens.index("bank")
    assert page.selectbox(key="qk_token").value == i  # opens on "bank"
    page.radio(key="qk_order").set_value("model order").run()
    header, products = _map(page, "qk_products")
    _close(header, products, qk.q[i][None, :] * qk.k * qk.scale)
    assert header["cols"] == [f"d{d}" for d in range(qk.q.shape[1])]
    _close(*_map(page, "qk_query"), qk.q[i][None, :])
    _close(*_map(page, "qk_keys"), qk.k)


def test_table_scores_and_weights(page, qk, encoder):
    # Bug: a weight column that is not the model's attention row (softmax over the wrong axis, bias left out).
    i = page.selectbox(key="qk_token").value
    table = page.dataframe[0].value
    dots = (qk.q[i] * qk.k).sum(axis=1) * qk.scale
    np.testing.assert_allclose(table["q·k·scale"].to_numpy(float), dots, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(table["weight"].to_numpy(float), es.attention(encoder, TEXT).weights[LAYER, HEAD, i],
                               atol=1e-4)


def test_another_token_and_sorted_dimensions(page, qk):
    # Bug: sorting reorders the labels but not the values (or the other way round).
    i = qk.tokens.index("river")
    page.selectbox(key="qk_token").set_value(i).run()
    page.radio(key="qk_order").set_value("contribution to the attended keys").run()
    no_exceptions(page)
    products = qk.q[i][None, :] * qk.k * qk.scale
    order = np.argsort(-(qk.weights[i][:, None] * products).sum(axis=0), kind="stable")
    header, drawn = _map(page, "qk_products")
    assert header["cols"] == [f"d{d}" for d in order]
    _close(header, drawn, products[:, order])


def test_mean_asks_for_one_head(page):
    page.session_state["head"] = "mean"
    page.run()
    no_exceptions(page)
    assert "Pick a single head" in messages(page)
    assert heatmap(page, "qk_products") is None
    page.session_state["head"] = HEAD
    page.run()
