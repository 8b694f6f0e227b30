"""The deletion engine, its sentence and its figure, on hand-computed cases (no model): the value of a state is the
sum of the weights of the units left in, so every curve is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from encoderscope.attribution.lens import first_layer_above
from encoderscope.faithfulness import curves as engine
from encoderscope.figures.attribution import deletion_chart

WEIGHTS = np.array([0.1, 0.4, 0.0, 0.3, 0.2])  # unit i contributes WEIGHTS[i]


def _left_in(states):
    return np.array([WEIGHTS[~removed].sum() for removed in states])


def test_curves_by_hand():
    # Bugs: insertion starting full, the order ascending, a step evaluated twice, random orders not permutations.
    calls = []

    def evaluate(states):
        calls.append(len(states))
        return _left_in(states)

    (c,) = engine.curves(evaluate, [WEIGHTS], steps=5, seeds=3, measure="sum", unit="token", removal="delete")
    np.testing.assert_array_equal(c.counts, [0, 1, 2, 3, 4, 5])
    np.testing.assert_allclose(c.deletion, [1.0, 0.6, 0.3, 0.1, 0.0, 0.0], atol=1e-12)  # 0.4, 0.3, 0.2, 0.1, 0.0
    np.testing.assert_allclose(c.insertion, [0.0, 0.4, 0.7, 0.9, 1.0, 1.0], atol=1e-12)
    assert c.random_runs.shape == (3, 6)
    assert (c.random_runs[:, 0] == 1.0).all() and (c.random_runs[:, -1] == 0.0).all()
    assert c.area_deletion == pytest.approx(2.0 / 6)
    assert c.comprehensiveness == pytest.approx(np.mean([0.4, 0.7, 0.9, 1.0]))
    assert c.sufficiency == pytest.approx(np.mean([0.6, 0.3, 0.1, 0.0]))
    assert c.beats_random and c.area_random > c.area_deletion
    # at most one evaluation per step, and states seen before (all in, all out) not run again: step 0 holds the
    # full and the empty input only, step S nothing new
    assert calls[0] == 2 and len(calls) == 5 and sum(calls) < 6 * (2 + 3)


def test_random_orders_are_fixed_and_shared_between_methods():
    a, b = engine.curves(_left_in, [WEIGHTS, -WEIGHTS], steps=5, seeds=4, measure="sum", unit="token", removal="x")
    np.testing.assert_array_equal(a.random_runs, b.random_runs)
    np.testing.assert_allclose(b.deletion, [1.0, 1.0, 0.9, 0.7, 0.4, 0.0], atol=1e-12)  # reversed: 0.0 first
    assert not b.beats_random
    (again,) = engine.curves(_left_in, [WEIGHTS], steps=5, seeds=4, measure="sum", unit="token", removal="x")
    np.testing.assert_array_equal(again.random_runs, a.random_runs)


def test_describe_says_faster_or_slower():
    fast, slow = engine.curves(_left_in, [WEIGHTS, -WEIGHTS], 5, 3, measure="cosine", unit="token", removal="delete")
    assert "lowers the cosine faster than random removal" in engine.describe(fast)
    assert "lowers the cosine slower than random removal" in engine.describe(slow)
    assert engine.describe(fast).startswith("Removing the tokens this explanation ranks highest")


def test_table_has_every_curve():
    (c,) = engine.curves(_left_in, [WEIGHTS], 5, 2, measure="sum", unit="token", removal="delete")
    frame = engine.table({"relevance": c})
    assert list(frame.columns[:7]) == ["method", "step", "removed", "deletion", "insertion", "random_mean", "random_sd"]
    np.testing.assert_allclose(frame["random_1"], c.random_runs[1])


def test_deletion_chart_draws_the_arrays():
    # Bugs: the band drawn around the deletion curve, areas missing from the legend, x not the counts.
    counts = np.array([0, 2, 4])
    fig = deletion_chart(counts, {"relevance": (np.array([1.0, 0.5, 0.1]), 0.533)}, np.array([1.0, 0.8, 0.1]),
                         np.array([0.0, 0.1, 0.0]), 0.633, "probability", "patch", title="Deletion test")
    by_name = {t.name: t for t in fig.data}
    np.testing.assert_allclose(by_name["random ± sd"].y, [1.0, 0.9, 0.1])
    np.testing.assert_allclose(by_name["random − sd"].y, [1.0, 0.7, 0.1])
    np.testing.assert_allclose(by_name["relevance (area 0.533)"].y, [1.0, 0.5, 0.1])
    np.testing.assert_array_equal(by_name["random order (area 0.633)"].x, counts)
    assert fig.layout.xaxis.title.text == "patches removed, highest-ranked first"
    assert fig.layout.xaxis.dtick == 1  # a few patches: whole-number ticks only


def test_first_layer_above():
    assert first_layer_above(np.array([0.1, 0.49, 0.5, 0.9])) == 2
    assert first_layer_above(np.array([0.1, 0.2])) is None
    assert first_layer_above(np.array([0.1, 0.3]), 0.25) == 1


def test_steps_follow_the_servers_cap():
    # Bug: a public server running hundreds of forward passes for one curve.
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_ATTRIBUTION_MAX_STEPS": "3"})
    try:
        np.testing.assert_array_equal(engine.step_counts(30, 10), [0, 10, 20, 30])
    finally:
        settings.reload()
