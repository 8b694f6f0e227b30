"""Attribution figures and tables: arrays in, figures and CSV out (no model needed)."""

import io

import numpy as np
import pandas as pd

from encoderscope import figures
from encoderscope.attribution import tables


def test_shaded_tokens_wrap_long_texts_and_keep_every_score():
    # Bug caught: tokens lost at a line break, or a colour range that is not centred on zero.
    tokens = [f"t{i}" for i in range(30)]
    scores = np.linspace(-0.2, 0.5, 30)
    fig = figures.shaded_tokens([("A", tokens, scores), ("B", ["x", "y"], np.array([0.1, -0.1]))])
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (4, figures.attribution.LINE)  # 30 tokens on 3 lines, 2 on one
    np.testing.assert_allclose(z[~np.isnan(z)], np.concatenate([scores, [0.1, -0.1]]), rtol=1e-6)
    assert fig.data[0].zmin == -0.5 and fig.data[0].zmax == 0.5
    assert list(fig.layout.yaxis.ticktext) == ["A", "", "", "B"]


def test_token_text_is_escaped():
    fig = figures.shaded_tokens([("<b>A</b>", ["<img src=x onerror=1>"], np.array([1.0]))])
    strings = str(fig.to_plotly_json())
    assert "<img" not in strings and "&lt;img" in strings and "<b>A</b>" not in strings


def test_lens_grid_has_one_column_per_position_even_with_repeated_tokens():
    # Bug caught (seen in the browser): a category axis without x values drew an empty grid; repeated tokens
    # ("the" twice) must stay separate columns.
    tokens = ["The", "Ġcat", "Ġand", "Ġthe", "Ġcat"]
    L1, T, k = 3, len(tokens), 2
    top = [[["a", "b"] for _ in range(T)] for _ in range(L1)]
    probs = np.full((L1, T, k), 0.25, np.float32)
    fig = figures.lens_grid(top, probs, tokens)
    assert len(set(fig.data[0].x)) == T and list(fig.data[0].y) == [0, 1, 2]
    assert fig.data[0].zmin == 0 and fig.data[0].zmax == 1


def test_pair_matrix_is_symmetric_around_zero():
    fig = figures.pair_matrix(np.array([[0.1, -0.3], [0.2, 0.0]]), ["a", "b"], ["c", "d"])
    assert fig.data[0].zmin == -0.3 and fig.data[0].zmax == 0.3


def test_csv_quotes_formulas():
    frame = tables.token_scores([("A", ["=cmd|' /C calc'!A0", "+1", "ok"], np.array([0.1, 0.2, 0.3]))])
    back = pd.read_csv(io.BytesIO(tables.csv_bytes(frame)), dtype=str)
    assert back["token"].tolist() == ["'=cmd|' /C calc'!A0", "'+1", "ok"]
    assert back["score"].astype(float).tolist() == [0.1, 0.2, 0.3]


def test_lens_table_long_form():
    probs = np.arange(12, dtype=np.float32).reshape(2, 3, 2) / 12
    top = [[[f"L{layer}t{t}r{r}" for r in range(2)] for t in range(3)] for layer in range(2)]
    frame = tables.lens_table(["a", "b", "c"], top, probs)
    assert len(frame) == 12
    row = frame[(frame.layer == 1) & (frame.position == 2) & (frame["rank"] == 2)].iloc[0]
    assert row.token == "L1t2r1" and row.input_token == "c" and row.prob == probs[1, 2, 1]
