"""The Atlas page's comparison section: after `atlas compare` (run here through the library), a's map is coloured by
the overlap computed independently in the test, b's aligned map is drawn beside it, and a click lists the point's
neighbours under a and under b."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import encoderscope as es
from encoderscope import settings
from tests.app.conftest import app, messages, no_exceptions
from tests.app.test_atlas_page import TEXTS, write_atlas

K = 3


@pytest.fixture
def compared(tmp_path, encoder):
    """Two atlases of one corpus: "faq" (MiniLM, mean pooling) and "faq_b" (MiniLM's [CLS] vectors), compared."""
    xa, xb = es.embed(encoder, TEXTS), es.embed(encoder, TEXTS, pooling="cls")
    root = tmp_path / "atlases"
    write_atlas(root / "faq", xa)
    write_atlas(root / "faq_b", xb)
    es.atlas.compare_atlases(root / "faq", root / "faq_b", k=K)
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(root)})
    yield xa, xb
    settings.reload()


def _pairs(at) -> dict:
    for element in at.get("bidi_component"):
        if element.proto.id.endswith("-atlas_pairs_faq_b") and element.proto.json:
            return json.loads(element.proto.json)
    raise AssertionError("no comparison map")


def _floats(b64: str, shape=(-1,)) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), np.float32).reshape(shape)


def test_map_is_coloured_by_overlap_with_bs_map_aligned_beside(compared):
    xa, xb = compared
    at = app("atlas", {"atlas": "faq"})
    at.run()
    no_exceptions(at)
    data = _pairs(at)
    nb = es.compare.neighbours(xa, xb, k=K)
    np.testing.assert_allclose(_floats(data["values"]), nb.overlap, atol=1e-6)
    assert data["colour_by"] == "overlap" and data["texts"][0] == TEXTS[0]
    points = es.atlas.load(settings.get().atlas_dir + "/faq").points
    np.testing.assert_allclose(_floats(data["xa"], (-1, 2)), points[["x", "y"]].to_numpy(np.float32))
    yb = es.atlas.load(settings.get().atlas_dir + "/faq_b").points[["x", "y"]].to_numpy(np.float64)
    expected_b = es.compare.align(points[["x", "y"]].to_numpy(np.float64), yb).aligned
    np.testing.assert_allclose(_floats(data["xb"], (-1, 2)), expected_b, atol=1e-5)
    assert f"mutual k-NN {nb.mutual_knn:.3f}" in " ".join(c.value for c in at.caption).replace("\\", "")


def test_click_lists_neighbours_under_each_model(compared):
    xa, xb = compared
    at = app("atlas", {"atlas": "faq"})
    at.run()
    at.session_state["atlas_pairs_faq_b"] = {"clicked": 2}
    at.run()
    no_exceptions(at)
    nb = es.compare.neighbours(xa, xb, k=K)
    data = _pairs(at)
    assert data["selected"] == 2
    assert data["neighbours_a"] == nb.neighbours_a[2].tolist() and data["neighbours_b"] == nb.neighbours_b[2].tolist()
    tables = [d.value for d in at.dataframe if "shared" in d.value.columns]
    assert [t["id"].tolist() for t in tables] == [nb.neighbours_a[2].tolist(), nb.neighbours_b[2].tolist()]
    assert "error" not in messages(at).lower()


def test_no_comparison_gives_a_hint_only(tmp_path, encoder):
    root = tmp_path / "atlases"
    write_atlas(root / "faq", es.embed(encoder, TEXTS))
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(root)})
    try:
        at = app("atlas", {"atlas": "faq"})
        at.run()
        no_exceptions(at)
        assert "atlas compare" in " ".join(c.value for c in at.caption).replace("\\", "")
        assert not any(e.proto.id.endswith("atlas_pairs_faq_b") for e in at.get("bidi_component"))
    finally:
        settings.reload()
