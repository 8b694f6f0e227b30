"""The Atlas page (/atlas) with AppTest: listing, opening, search, shape selection, CSV export, bad input.

Atlases are written file by file here in the documented format (points.parquet, vectors.npy, clusters.parquet,
atlas.json), so these tests check the page against the format, not against the builder."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import encoderscope as es
from components.atlas import payload as atlas_payload
from encoderscope import settings
from tests.app.conftest import app, download, messages, no_exceptions

TEXTS = [
    "How do I reset my password?",
    "I forgot my login password.",
    "The cat sat on the mat.",
    "Dogs love to chase balls in the park.",
    "Bake bread at 220 degrees for thirty minutes.",
    "A sourdough starter needs flour and water.",
    '=HYPERLINK("http://evil", "click")',
    "Stock markets fell sharply on Monday.",
    "The central bank raised interest rates.",
    "Quantum computers use qubits.",
    "Photosynthesis turns light into sugar.",
    "The striker scored twice in the final.",
]


def write_atlas(
    folder: Path, vectors: np.ndarray | None, model: str | None = "all-MiniLM-L6-v2 (bundled)", n: int | None = None
) -> pd.DataFrame:
    """A documented-format atlas in `folder`; returns its points. Positions are seeded random, 3 clusters."""
    n = len(TEXTS) if n is None else n
    rng = np.random.default_rng(7)
    points = pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "x": rng.normal(size=n).astype(np.float32),
            "y": rng.normal(size=n).astype(np.float32),
            "cluster": (np.arange(n) % 3).astype(np.int32),
            "text": [TEXTS[i % len(TEXTS)] for i in range(n)],
            "label": [f"L{i % 2}" for i in range(n)],
        }
    )
    folder.mkdir(parents=True)
    points.to_parquet(folder / "points.parquet")
    if vectors is not None:
        np.save(folder / "vectors.npy", vectors.astype(np.float32))
    sizes = points.groupby("cluster").size()
    centroids = points.groupby("cluster")[["x", "y"]].mean()
    pd.DataFrame(
        {
            "cluster": sizes.index.astype(np.int32),
            "size": sizes.values,
            "x": centroids.x.values,
            "y": centroids.y.values,
            "name": [f"topic {c}" for c in sizes.index],
        }
    ).to_parquet(folder / "clusters.parquet")
    D = 0 if vectors is None else vectors.shape[1]
    (folder / "atlas.json").write_text(json.dumps({"model": model, "pooling": "auto", "N": n, "D": D}))
    return points


@pytest.fixture(scope="module")
def vectors(encoder) -> np.ndarray:
    return es.embed(encoder, TEXTS)


@pytest.fixture
def atlas_root(tmp_path, vectors):
    """An atlas folder with one searchable atlas "faq", set as ENCODERSCOPE_ATLAS_DIR for the test."""
    root = tmp_path / "atlases"
    points = write_atlas(root / "faq", vectors)
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(root)})
    yield root, points
    settings.reload()


def page(query: dict | None = None):
    at = app("atlas", query)
    at.run()
    no_exceptions(at)
    return at


def map_key(at) -> str:
    """The session-state key of the map component now shown (one per atlas: views.map_key)."""
    keys = [k for k in at.session_state.keys() if str(k).startswith("atlas_map_")]
    data = component_data(at)
    assert data is not None and keys, "no map on the page"
    return keys[-1] if len(keys) == 1 else _current_map_key(at, keys)


def _current_map_key(at, keys: list[str]) -> str:
    found = [e for e in _elements(at._tree) if getattr(e, "type", "") == "bidi_component"]
    ident = found[0].proto.id
    return next(k for k in keys if k in ident)


def set_map_state(at, key: str, selection: dict | None = None, clicked: int | None = None):
    """What the renderer does after a drag or a click: set the component's state, rerun."""
    at.session_state[key] = {"selection": selection, "clicked": clicked}
    at.run()
    no_exceptions(at)
    return at


def select_shape(at, shape: dict):
    """What the renderer does after a box or lasso drag: set the component's `selection` state, rerun."""
    return set_map_state(at, map_key(at), selection=shape)


def _elements(node):
    for child in (getattr(node, "children", None) or {}).values():
        yield child
        yield from _elements(child)


def component_data(at) -> dict | None:
    """The data the page sent to the map renderer (None when no map is shown)."""
    found = [e for e in _elements(at._tree) if getattr(e, "type", "") == "bidi_component"]
    return json.loads(found[0].proto.json) if found else None


def decoded(data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, colour codes) as the browser decodes the payload."""
    xy = np.frombuffer(base64.b64decode(data["xy"]), np.uint16).reshape(-1, 2) / 65535.0
    x0, x1, y0, y1 = data["bounds"]
    codes = np.frombuffer(base64.b64decode(data["colour"]), np.uint8)
    return x0 + xy[:, 0] * (x1 - x0), y0 + xy[:, 1] * (y1 - y0), codes


# The page's tables, told apart by their columns (AppTest does not expose dataframe keys).
TABLES = {"list": {"name", "model"}, "hits": {"cosine"}, "selection": {"x", "y", "text"}}


def table(at, which: str) -> pd.DataFrame | None:
    found = [d.value for d in at.dataframe if TABLES[which] <= set(d.value.columns)]
    return found[0] if found else None


# --- listing and opening ----------------------------------------------------------------------


def test_lists_atlases_with_size_and_model(atlas_root, vectors):
    root, _ = atlas_root
    write_atlas(root / "big", None, model=None, n=40)
    at = page()
    listed = table(at, "list")
    assert listed.to_dict("records") == [
        {"name": "big", "points": 40, "model": ""},
        {"name": "faq", "points": len(TEXTS), "model": "all-MiniLM-L6-v2 (bundled)"},
    ]
    assert at.selectbox(key="atlas").options == ["big", "faq"]


def test_opens_and_draws_every_point(atlas_root):
    # Bug: points lost or mis-coloured on the way to the renderer. Decode the payload as the browser does.
    _, points = atlas_root
    at = page({"atlas": "faq"})
    data = component_data(at)
    x, y, codes = decoded(data)
    x0, x1, y0, y1 = data["bounds"]
    np.testing.assert_allclose(x, points.x, atol=(x1 - x0) / 65535)
    np.testing.assert_allclose(y, points.y, atol=(y1 - y0) / 65535)
    # same cluster <=> same colour (3 clusters, all different colours)
    assert len({(c, k) for c, k in zip(codes, points.cluster, strict=True)}) == 3
    assert sorted(lab["name"] for lab in data["labels"]) == ["topic 0", "topic 1", "topic 2"]


# --- search -----------------------------------------------------------------------------------


def test_search_equals_numpy_cosine_top_k(atlas_root, encoder, vectors):
    at = page({"atlas": "faq"})
    at.number_input(key="top_k").set_value(4)
    at.text_input(key="query").input("I cannot log in, password lost").run()
    no_exceptions(at)
    q = es.embed(encoder, ["I cannot log in, password lost"])[0]
    cos = vectors @ q
    expected = np.argsort(-cos)[:4]
    hits = table(at, "hits")
    assert hits["id"].tolist() == expected.tolist()
    np.testing.assert_allclose(hits["cosine"], cos[expected], atol=1e-3)
    assert hits["text"].tolist() == [TEXTS[i] for i in expected]
    assert component_data(at)["highlight"] == expected.tolist()


def test_search_off_without_vectors_says_why(tmp_path):
    root = tmp_path / "atlases"
    write_atlas(root / "nomodel", np.eye(len(TEXTS), 4, dtype=np.float32), model=None)
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(root)})
    try:
        at = page()
        assert at.text_input(key="query").disabled
        assert "without --model" in " ".join(c.value for c in at.caption)
    finally:
        settings.reload()


# --- selection ---------------------------------------------------------------------------------


def test_box_selection_equals_numpy(atlas_root):
    _, points = atlas_root
    at = page({"atlas": "faq"})
    at = select_shape(at, {"kind": "box", "x0": 0.5, "x1": -0.8, "y0": -1.0, "y1": 0.7})  # corners in any order
    inside = (points.x >= -0.8) & (points.x <= 0.5) & (points.y >= -1.0) & (points.y <= 0.7)
    assert inside.sum() > 1
    assert table(at, "selection")["id"].tolist() == points.index[inside].tolist()


def test_lasso_selection_equals_point_in_polygon(atlas_root):
    _, points = atlas_root
    triangle = [[-2.0, -2.0], [2.0, -1.5], [0.0, 2.0]]
    at = select_shape(page({"atlas": "faq"}), {"kind": "lasso", "points": triangle})

    def inside(px, py):  # barycentric sign test, independent of the page's ray casting
        (ax, ay), (bx, by), (cx, cy) = triangle
        s = [
            (bx - ax) * (py - ay) - (by - ay) * (px - ax),
            (cx - bx) * (py - by) - (cy - by) * (px - bx),
            (ax - cx) * (py - cy) - (ay - cy) * (px - cx),
        ]
        return all(v > 0 for v in s) or all(v < 0 for v in s)

    expected = [i for i, (px, py) in enumerate(zip(points.x, points.y, strict=True)) if inside(px, py)]
    assert 0 < len(expected) < len(points)
    assert table(at, "selection")["id"].tolist() == expected


def test_selection_csv_is_formula_guarded(atlas_root):
    _, points = atlas_root
    at = select_shape(page({"atlas": "faq"}), {"kind": "box", "x0": -99, "x1": 99, "y0": -99, "y1": 99})
    name, data = download(at, "selection")
    assert name == "faq_selection.csv"
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [int(r["id"]) for r in rows] == list(range(len(TEXTS)))
    assert rows[6]["text"] == "'" + TEXTS[6]  # the formula cell is quoted
    assert rows[0]["text"] == TEXTS[0]


@pytest.mark.parametrize(
    "shape",
    [{"kind": "lasso", "points": [[0, 0], [1, 1]]}, {"kind": "box", "x0": "nan", "x1": 1, "y0": 0, "y1": 1}, "junk"],
)
def test_malformed_shapes_select_nothing(atlas_root, shape):
    at = select_shape(page({"atlas": "faq"}), shape)
    assert table(at, "selection") is None


# --- bad input ---------------------------------------------------------------------------------


def test_path_outside_the_folder_is_refused(atlas_root, tmp_path):
    write_atlas(tmp_path / "secret", None, n=5)
    for name in ("../secret", str(tmp_path / "secret"), "faq/../../secret"):
        at = page({"atlas": name})
        assert "is not an atlas in this server's atlas folder" in messages(at)
        assert at.selectbox(key="atlas").value == "faq"  # falls back to a listed atlas


def test_malformed_atlas_gives_a_message(atlas_root):
    root, _ = atlas_root
    (root / "broken").mkdir()
    (root / "broken" / "points.parquet").write_bytes(b"PAR1 this is not parquet")
    (root / "broken" / "atlas.json").write_text("{not json")
    at = page({"atlas": "broken"})
    assert "Could not open the atlas 'broken'" in messages(at)
    assert str(root) not in messages(at)
    assert component_data(at) is None


def shown_text(at) -> str:
    return " ".join(
        str(e.value) for kind in ("caption", "markdown", "info", "error", "warning") for e in getattr(at, kind)
    )


def upload(at, data: bytes, name: str = "points.parquet"):
    at.radio(key="source").set_value("Upload points.parquet").run()
    at.file_uploader(key="points_upload").set_value((name, data, "application/octet-stream")).run()
    no_exceptions(at)
    return at


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


def test_uploaded_points_open_without_search(atlas_root):
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.5], "cluster": [0, 0, -1], "text": ["a", "b", "c"]})
    at = upload(page(), _parquet(frame))
    data = component_data(at)
    assert data["n"] == 3
    codes = decoded(data)[2]
    assert codes[2] == atlas_payload.NOISE and codes[0] == codes[1] != atlas_payload.NOISE
    assert at.text_input(key="query").disabled


@pytest.mark.parametrize(
    "data, says",
    [
        (b"PAR1garbage", "is not a readable Parquet file"),
        (_parquet(pd.DataFrame({"x": [0.0], "y": [1.0], "text": ["a"]})), "lacks the column(s) cluster"),
        (
            _parquet(pd.DataFrame({"x": [0.0, np.nan], "y": [1.0, 2], "cluster": [0, 0], "text": ["a", "b"]})),
            "non-finite x or y at rows 1",
        ),
    ],
)
def test_bad_uploads_are_refused(atlas_root, data, says):
    at = upload(page(), data)
    assert says in messages(at)
    assert component_data(at) is None


def test_public_mode_lists_no_server_folder(atlas_root):
    settings.reload({"ENCODERSCOPE_PUBLIC": "1"})
    at = page({"atlas": "faq"})
    assert at.radio(key="source").options == ["Upload points.parquet"]
    assert str(atlas_root[0]) not in shown_text(at)
    assert component_data(at) is None


def test_public_mode_with_operator_folder_hides_its_path(atlas_root):
    root, _ = atlas_root
    settings.reload({"ENCODERSCOPE_PUBLIC": "1", "ENCODERSCOPE_ATLAS_DIR": str(root)})
    at = page({"atlas": "faq"})
    assert component_data(at) is not None
    assert str(root) not in shown_text(at)


# --- the way in from the Embeddings page --------------------------------------------------------


def test_embeddings_page_above_its_cap_shows_the_atlas_command(tmp_path):
    root = tmp_path / "atlases"
    settings.reload({"ENCODERSCOPE_MAX_SENTENCES": "3", "ENCODERSCOPE_ATLAS_DIR": str(root)})
    try:
        at = app("embeddings")
        at.run()
        at.radio(key="source").set_value("CSV upload").run()
        data = "sentence,topic\n" + "".join(f"text number {i},t{i % 2}\n" for i in range(6))
        at.file_uploader(key="csv_upload").set_value(("my corpus.csv", data.encode(), "text/csv")).run()
        no_exceptions(at)
        commands = [c.value for c in at.code]
        assert commands == [
            f"python -m encoderscope atlas build 'my corpus.csv' --text-column sentence --out {root}/my corpus".replace(
                f"{root}/my corpus", f"'{root}/my corpus'"
            )
        ]
    finally:
        settings.reload()


def test_clicked_point_shows_its_text_and_searches_by_it(atlas_root, vectors):
    # Bug: the wrong row shown for a clicked id, or the point query not using that point's own vector.
    at = page({"atlas": "faq"})
    at = set_map_state(at, map_key(at), clicked=4)
    assert [t.value for t in at.text] == [TEXTS[4]]
    at.button(key="point_search").click().run()
    no_exceptions(at)
    cos = vectors @ vectors[4]
    expected = np.argsort(-cos)[:10]
    hits = table(at, "hits")
    assert hits["id"].tolist()[0] == 4
    assert sorted(hits["id"]) == sorted(expected.tolist())
    np.testing.assert_allclose(hits["cosine"], np.sort(cos)[::-1][:10], atol=1e-3)


def test_atlas_dir_setting():
    # Bug: the atlas folder not following the cache folder, or a public server listing a server folder by default.
    assert settings.load({"ENCODERSCOPE_CACHE_DIR": "/data/cache"}).atlas_dir == "/data/cache/atlases"
    assert settings.load({"ENCODERSCOPE_PUBLIC": "1"}).atlas_dir == ""
    assert (
        settings.load({"ENCODERSCOPE_PUBLIC": "1", "ENCODERSCOPE_ATLAS_DIR": "/srv/atlases"}).atlas_dir
        == "/srv/atlases"
    )


# --- issue 16 §3 and issue 17: state per atlas, inflating uploads, symlinks out of the folder -----------


def test_a_selection_or_click_on_one_atlas_never_applies_to_another(atlas_root, vectors):
    # Bug: the map component keyed on a constant: A's lasso (or clicked point) read back on atlas B.
    root, _ = atlas_root
    write_atlas(root / "other", vectors)
    at = page({"atlas": "faq"})
    everything = {"kind": "box", "x0": -100.0, "x1": 100.0, "y0": -100.0, "y1": 100.0}
    at = set_map_state(at, map_key(at), selection=everything, clicked=4)
    assert len(table(at, "selection")) == len(TEXTS)
    assert [t.value for t in at.text] == [TEXTS[4]]
    at.selectbox(key="atlas").set_value("other").run()
    no_exceptions(at)
    assert component_data(at) is not None
    assert table(at, "selection") is None
    assert [t.value for t in at.text] == []
    assert not any("Selection" in str(m.value) for m in at.markdown)


def _inflating(rows: int, dictionary: bool) -> bytes:
    """A tiny Parquet file whose `rows` texts are 1 MB each once read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    big = "x" * 1_000_000
    if dictionary:  # one 1 MB value, repeated: the file stays a few KB
        text = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)), pa.array([big]))
    else:  # distinct values, compressed away by zstd
        text = pa.array([big[:-4] + f"{i:04d}" for i in range(rows)])
    table = pa.table({"x": np.zeros(rows, np.float32), "y": np.zeros(rows, np.float32),
                      "cluster": np.zeros(rows, np.int32), "text": text})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", use_dictionary=dictionary)
    return buf.getvalue()


@pytest.mark.parametrize("dictionary", [True, False])
def test_an_upload_that_inflates_is_refused_before_it_is_read(atlas_root, dictionary, monkeypatch):
    # Bug: the whole table read (and converted to pandas) before any size check: a 53 KB file of 4,000
    # one-MB strings became 4 GB. Here 30 rows of 1 MB against a 10 MB limit.
    import pyarrow.parquet as pq

    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(atlas_root[0]), "ENCODERSCOPE_ATLAS_UPLOAD_BYTES": "10000000"})
    data = _inflating(30, dictionary)
    assert len(data) < 200_000
    if not dictionary:  # the metadata alone must refuse it: reading a column would be too late
        monkeypatch.setattr(pq.ParquetFile, "read", lambda *a, **k: pytest.fail("read before the size check"))
    at = upload(page(), data)
    text = messages(at)
    assert "uploads are capped at 10 MB" in text and "ENCODERSCOPE_ATLAS_UPLOAD_BYTES" in text
    assert component_data(at) is None


def test_an_upload_within_the_limits_reads_only_the_needed_columns(atlas_root):
    # Bug: a size check that counts too much (every column) or refuses an ordinary file.
    frame = pd.DataFrame({"x": [0.0, 1.0], "y": [1.0, 0.0], "cluster": [0, 1], "text": ["a", "b"],
                          "junk": ["z" * 2_000_000, "z"]})
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(atlas_root[0]), "ENCODERSCOPE_ATLAS_UPLOAD_BYTES": "1000000"})
    at = upload(page(), _parquet(frame))
    data = component_data(at)
    assert data is not None and data["n"] == 2
    assert data["texts"] == ["a", "b"]  # hover texts travel at this size


def test_rows_over_the_cap_are_refused_from_the_metadata(atlas_root):
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(atlas_root[0]), "ENCODERSCOPE_MAX_CSV_ROWS": "5"})
    frame = pd.DataFrame({"x": np.zeros(6), "y": np.zeros(6), "cluster": np.zeros(6, int), "text": list("abcdef")})
    at = upload(page(), _parquet(frame))
    assert "has 6 points; uploads are capped at 5" in messages(at)


def test_an_atlas_name_that_symlinks_out_of_the_folder_is_refused(atlas_root, tmp_path, vectors):
    # Bug: the resolved-path check removed: a symlink in the atlas folder opens an atlas (or any folder with
    # a points.parquet) elsewhere on the server.
    from components.atlas import cache

    root, _ = atlas_root
    write_atlas(tmp_path / "elsewhere" / "secret", vectors)
    (root / "escape").symlink_to(tmp_path / "elsewhere" / "secret", target_is_directory=True)
    (root / "inside").symlink_to(root / "faq", target_is_directory=True)  # a link that stays inside is fine
    with pytest.raises(cache.AtlasOpenError, match="is not an atlas in this server's atlas folder"):
        cache.resolve("escape")
    assert cache.resolve("inside") == (root / "faq").resolve()
    assert "escape" not in set(cache.listing()["name"])
    at = page({"atlas": "escape"})
    assert "is not an atlas in this server's atlas folder" in messages(at)
    assert at.selectbox(key="atlas").value != "escape"


def _plotly_array(value) -> np.ndarray:
    """A Plotly figure array: a nested list, or the typed form {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(value, dict):
        array = np.frombuffer(base64.b64decode(value["bdata"]), np.dtype(value["dtype"]))
        shape = [int(v) for v in str(value.get("shape", len(array))).split(",")]
        return array.reshape(shape).astype(float)
    return np.asarray(value, float)


def test_a_clicked_hit_explains_the_query_against_it(atlas_root, encoder, vectors):
    # Bugs: the explanation of another text (the wrong row, or the clicked point of another atlas), of another
    # query, or none at all; values not those of es.explain_similarity.
    query = "I forgot my password"
    at = page({"atlas": "faq"})
    at.text_input(key="query").set_value(query).run()
    no_exceptions(at)
    hits = table(at, "hits")
    hit = int(hits["id"].iloc[1])  # the second hit: not simply the first row
    assert not at.metric  # nothing explained before a click
    at = set_map_state(at, map_key(at), clicked=hit)
    ex = es.explain_similarity(encoder, query, TEXTS[hit])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Cosine"] == f"{ex.cosine:.4f}"
    np.testing.assert_allclose(ex.cosine, hits["cosine"].iloc[1], atol=1e-3)  # the hit's own cosine
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    pairs = [f for f in figures if "Token × token" in json.dumps(f["layout"].get("title", ""), ensure_ascii=False)]
    assert pairs, "the token x token matrix (exact for the bundled mean-pooled model)"
    heat = [t for t in pairs[0]["data"] if t.get("type") == "heatmap"]
    np.testing.assert_allclose(_plotly_array(heat[0]["z"]), ex.pairs, atol=1e-4)
    # a click on a point that is not a hit explains nothing
    other = next(i for i in range(len(TEXTS)) if i not in set(hits["id"]))
    at = set_map_state(at, map_key(at), clicked=other)
    assert not at.metric
