"""es.compare.neighbours above its exact limit: NN-descent, with a recall it measures, checked against the exact
search. Slow the first time on a machine (pynndescent compiles with numba), so it has its own file."""

import numpy as np
import pytest

import encoderscope as es

pytestmark = pytest.mark.slow


def test_above_the_exact_limit_the_search_is_approximate_with_its_recall_measured():
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(40, 16))
    Xa = 2 * centres[rng.integers(0, 40, 3000)] + rng.normal(size=(3000, 16))
    Xb = Xa @ rng.normal(size=(16, 32)) + 0.5 * rng.normal(size=(3000, 32))
    approx = es.compare.neighbours(Xa, Xb, k=10, exact_limit=1000)
    exact = es.compare.neighbours(Xa, Xb, k=10)
    assert exact.exact and not approx.exact and any("approximately" in n for n in approx.notes)
    true_recall = min(
        np.mean([len(set(x) & set(y)) / 10 for x, y in zip(approx.neighbours_a, exact.neighbours_a, strict=True)]),
        np.mean([len(set(x) & set(y)) / 10 for x, y in zip(approx.neighbours_b, exact.neighbours_b, strict=True)]),
    )
    assert approx.recall >= 0.9 and approx.recall == pytest.approx(true_recall, abs=0.03)
    assert approx.mutual_knn == pytest.approx(exact.mutual_knn, abs=0.05)
