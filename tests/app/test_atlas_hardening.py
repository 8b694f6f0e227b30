"""Issue 24 §1 and §7 on the Atlas page: uploads refused from their schema before any column is read, and
atlas folders whose files link out of the server's atlas folder."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from encoderscope import settings
from tests.app.conftest import messages
from tests.app.test_atlas_page import atlas_root, component_data, page, upload, vectors, write_atlas  # noqa: F401


def _points(rows: int, **columns) -> bytes:
    """A points.parquet of `rows` rows (x, y, cluster, text, then `columns` replacing or adding), written
    without the Arrow schema, as a non-Arrow writer would: a dictionary column then reads back spelled out."""
    table = {"x": np.zeros(rows, np.float32), "y": np.zeros(rows, np.float32),
             "cluster": np.zeros(rows, np.int32), "text": pa.array(["a"] * rows)}
    table.update(columns)
    buf = io.BytesIO()
    pq.write_table(pa.table(table), buf, compression="zstd", store_schema=False)
    return buf.getvalue()


def _repeated(rows: int, size: int) -> pa.DictionaryArray:
    """One `size`-byte string, `rows` times, dictionary-encoded: a few bytes in the file, rows x size once read."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)), pa.array(["1" * size]))


@pytest.fixture
def reads(monkeypatch) -> list:
    """Every ParquetFile.read call the page makes (the calls still happen)."""
    calls, original = [], pq.ParquetFile.read
    monkeypatch.setattr(pq.ParquetFile, "read", lambda self, *a, **k: calls.append(k) or original(self, *a, **k))
    return calls


@pytest.mark.parametrize("column", ["x", "y", "cluster", "id"])
def test_a_string_in_a_numeric_column_is_refused_from_the_schema(atlas_root, reads, column):  # noqa: F811
    # Bug (issue 24 §1): the size check counted the metadata (4,000 x 100 KB dictionary-encoded: ~1 KB) and
    # kept only text/label encoded, so the read spelled this column out (400 MB) before refusing "non-finite x".
    data = _points(4_000, **{column: _repeated(4_000, 100_000)})
    assert len(data) < 5_000
    at = upload(page(), data)
    text = messages(at)
    assert f"the column {column} is stored as string" in text and "must be stored as numbers" in text
    assert reads == [], "a column was read before the schema was checked"
    assert component_data(at) is None


def test_a_list_text_column_is_refused_with_what_is_wrong(atlas_root):  # noqa: F811
    # Bug: refused only through a KeyError, shown as "not a readable Parquet file (KeyError)".
    at = upload(page(), _points(2, text=pa.array([["a", "b"], ["c"]])))
    text = messages(at)
    assert "the column text is stored as list<" in text and "not a list or a record" in text
    assert "KeyError" not in text


def test_integer_positions_and_a_string_label_still_open(atlas_root, reads):  # noqa: F811
    # Bug: a type check that refuses ordinary files (integer x, ids, a plain label) or leaves label spelled out.
    data = _points(3, x=np.arange(3, dtype=np.int64), id=np.arange(3, dtype=np.int64),
                   text=pa.array(["a", "b", "c"]), label=pa.array(["p", "q", "p"]))
    at = upload(page(), data)
    found = component_data(at)
    assert found is not None and found["n"] == 3 and found["texts"] == ["a", "b", "c"]
    assert sorted(reads[0]["columns"]) == ["cluster", "id", "label", "text", "x", "y"]


def test_a_repeated_label_is_measured_before_it_is_spelled_out(atlas_root):  # noqa: F811
    # Bug: label missing from the dictionary-encoded columns: 30 x 1 MB spelled out past a 10 MB limit.
    settings.reload({"ENCODERSCOPE_ATLAS_DIR": str(atlas_root[0]), "ENCODERSCOPE_ATLAS_UPLOAD_BYTES": "10000000"})
    at = upload(page(), _points(30, label=_repeated(30, 1_000_000)))
    assert "uploads are capped at 10 MB" in messages(at)


@pytest.mark.parametrize("file", ["points.parquet", "atlas.json", "vectors.npy", "clusters.parquet"])
def test_a_file_that_links_out_of_the_atlas_folder_is_refused(atlas_root, tmp_path, vectors, file):  # noqa: F811
    # Bug (issue 24 §7): only the folder was checked, so root/a/points.parquet -> /elsewhere/... was listed
    # and opened.
    from components.atlas import cache

    root, _ = atlas_root
    write_atlas(tmp_path / "elsewhere" / "secret", vectors)
    write_atlas(root / "a", vectors)
    (root / "a" / file).unlink()
    (root / "a" / file).symlink_to(tmp_path / "elsewhere" / "secret" / file)
    with pytest.raises(cache.AtlasOpenError, match=f"its {file} is a link out of"):
        cache.resolve("a")
    assert "a" not in set(cache.listing()["name"]) and "faq" in set(cache.listing()["name"])
    at = page({"atlas": "a"})  # the page offers only listed atlases
    assert "'a' is not an atlas in this server's atlas folder" in messages(at)
    assert component_data(at) is None or component_data(at)["n"] == 12  # nothing of a's drawn
    assert str(tmp_path) not in messages(at)


def test_a_file_linked_within_the_folder_and_a_folder_named_like_a_file(atlas_root, vectors):  # noqa: F811
    # Bugs: a check that refuses links that stay inside, or reads a folder named clusters.parquet (pandas
    # reads it as a dataset of whatever files it holds or links to).
    from components.atlas import cache

    root, _ = atlas_root
    write_atlas(root / "b", vectors)
    (root / "b" / "vectors.npy").unlink()
    (root / "b" / "vectors.npy").symlink_to(root / "faq" / "vectors.npy")
    assert cache.resolve("b") == root / "b"
    (root / "b" / "clusters.parquet").unlink()
    (root / "b" / "clusters.parquet").mkdir()
    shutil.copy(root / "faq" / "clusters.parquet", root / "b" / "clusters.parquet" / "part.parquet")
    with pytest.raises(cache.AtlasOpenError, match="its clusters.parquet is a link out of"):
        cache.resolve("b")
