"""CSV, .npy and TSV upload parsing edge cases."""

import io

import numpy as np
import pytest

from encoderscope import tabular
from encoderscope.tabular import UploadError


def test_utf8_bom_and_quoted_newlines():
    data = '\ufefftext,label\n"line one\nline two",a\nplain,\n\n,\n'.encode()
    table = tabular.read_csv(data)
    texts, labels = tabular.texts_and_labels(table.frame, "text", "label")
    assert texts == ["line one\nline two", "plain"] and labels == ["a", "(no label)"]
    assert list(table.frame.columns) == ["text", "label"]


def test_latin1_fallback_with_notice():
    table = tabular.read_csv("text\ncafé crème\n".encode("latin-1"))
    assert table.frame["text"][0] == "café crème" and "Latin-1" in table.notices[0]


@pytest.mark.parametrize("sep", [";", "\t"])
def test_delimiters(sep):
    table = tabular.read_csv(f"text{sep}label\nhello, world{sep}x\n".encode())
    assert table.frame["text"][0] == "hello, world" and table.frame["label"][0] == "x"


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary\xff\xfe" * 50, "binary"),
        (b"text\n", "no data rows"),
    ],
)
def test_bad_csv(data, match):
    with pytest.raises(UploadError, match=match):
        tabular.read_csv(data)


def test_caps():
    with pytest.raises(UploadError, match="limit"):
        tabular.read_csv(b"text\n" + b"x\n" * 100, max_bytes=50)
    table = tabular.read_csv(b"text\n" + b"x\n" * 100, max_rows=10)
    assert len(table.frame) == 10 and "first 10" in table.notices[-1]


def test_huge_field_and_deep_quoting():
    data = b'text\n"' + b"a" * 2_000_000 + b'"\n"""""""""""""nested"""""""""""""\n'
    table = tabular.read_csv(data)
    assert len(table.frame) == 2 and len(table.frame["text"][0]) == 2_000_000


def test_missing_columns_and_empty_text():
    frame = tabular.read_csv(b"a,b\n1,2\n").frame
    with pytest.raises(UploadError, match="no column"):
        tabular.texts_and_labels(frame, "text", None)
    with pytest.raises(UploadError, match="no text"):
        tabular.texts_and_labels(tabular.read_csv(b"text,b\n ,2\n").frame, "text", None)


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_vectors_ok():
    assert tabular.read_vectors(_npy(np.ones((3, 4))), "v.npy").shape == (3, 4)
    assert tabular.read_vectors(b"0.1\t0.2\n0.3\t0.4\n", "v.tsv").shape == (2, 2)


@pytest.mark.parametrize(
    "array,match",
    [
        (np.ones(4), "2 dimensions"),
        (np.ones((2, 2, 2)), "2 dimensions"),
        (np.array([[1.0, np.nan], [1, 2]]), "NaN"),
        (np.array([[1.0, np.inf]]), "NaN"),
        (np.array([[{"a": 1}]], dtype=object), "pickle"),
        (np.array([["a", "b"]]), "dtype"),
        (np.zeros((0, 3)), "empty"),
    ],
)
def test_bad_vectors(array, match):
    with pytest.raises(UploadError, match=match):
        tabular.read_vectors(_npy(array), "v.npy")


def test_bad_vector_files():
    with pytest.raises(UploadError):
        tabular.read_vectors(b"\x93NUMPY garbage", "v.npy")
    with pytest.raises(UploadError):
        tabular.read_vectors(b"a\tb\n", "v.tsv")
    with pytest.raises(UploadError, match="empty"):
        tabular.read_vectors(b"", "v.npy")


def test_metadata():
    texts, labels, _ = tabular.read_metadata(b"text,label\nhi,a\nyo,\n", 2)
    assert texts == ["hi", "yo"] and labels == ["a", "(no label)"]
    texts, labels, _ = tabular.read_metadata(b"sports\nfinance\n", 2)  # projector-style, one column, no header
    assert labels == ["sports", "finance"]
    with pytest.raises(UploadError, match="must match"):
        tabular.read_metadata(b"text,label\nhi,a\n", 3)


def test_npy_header_bombs_and_wrong_formats():
    good = _npy(np.ones((3, 4)))
    with pytest.raises(UploadError, match="truncated"):
        tabular.read_vectors(good.replace(b"(3, 4)", b"(1000000000000, 4)"), "v.npy")  # refused before allocating
    with pytest.raises(UploadError, match="truncated"):
        tabular.read_vectors(good[:-8], "v.npy")
    with pytest.raises(UploadError, match="npz"):
        tabular.read_vectors(b"PK\x03\x04rest", "v.npy")
    with pytest.raises(UploadError, match="no NumPy header"):
        tabular.read_vectors(b"1,2\n3,4\n", "v.npy")
    with pytest.raises(UploadError, match="dtype"):
        tabular.read_vectors(_npy(np.zeros(2, dtype=[("a", "f4")])), "v.npy")


@pytest.mark.parametrize(
    "data,columns,renamed",
    [
        (b"text,text \nx,y\n", ["text", "text (2)"], True),  # the same name once stripped
        (b"text,text\nx,y\n", ["text", "text (2)"], True),  # the same name outright (pandas: "text.1")
        (b" text ,text,text\nx,y,z\n", ["text", "text (2)", "text (3)"], True),
        (b"a,a,a (2)\nx,y,z\n", ["a", "a (3)", "a (2)"], True),  # a new name never takes an existing one
        (b",\nx,y\n", ["column 1", "column 2"], False),  # empty names (pandas: "Unnamed: 0")
        (b"text, ,\nx,y,z\n", ["text", "column 2", "column 3"], False),
        (b",column 1\nx,y\n", ["column 1", "column 1 (2)"], True),
    ],
)
def test_colliding_and_empty_header_names(data, columns, renamed):
    table = tabular.read_csv(data)
    assert list(table.frame.columns) == columns and table.frame.columns.is_unique
    assert table.header == data.split(b"\n")[0].decode().split(",")  # the header as written
    if "text" in columns:
        texts, labels = tabular.texts_and_labels(table.frame, "text", columns[1])
        assert texts == ["x"] and labels == ["y"]
    assert any("renamed" in n for n in table.notices) == renamed


def test_metadata_with_colliding_names():
    texts, labels, notices = tabular.read_metadata(b"text,text \nhi,a\nyo,b\n", 2)
    assert texts == ["hi", "yo"] and labels == ["(no label)"] * 2 and "renamed" in notices[0]
    texts, labels, _ = tabular.read_metadata(b"label,label,text\na,x,hi\nb,y,yo\n", 2)
    assert texts == ["hi", "yo"] and labels == ["a", "b"]
    _, labels, _ = tabular.read_metadata(b" sports \nfinance\n", 2)  # headerless: the first label as written
    assert labels == ["sports", "finance"]


def test_duplicate_columns_in_a_given_frame():
    import pandas as pd

    frame = pd.DataFrame([["x", "y"]], columns=["text", "text"])
    with pytest.raises(UploadError, match="several columns named 'text'"):
        tabular.texts_and_labels(frame, "text", None)


def test_unexpected_errors_become_upload_errors(monkeypatch):
    def boom(*args, **kwargs):
        raise IndexError("list index out of range")

    monkeypatch.setattr(tabular.pd, "read_csv", boom)
    with pytest.raises(UploadError, match="Could not read the file as CSV: IndexError"):
        tabular.read_csv(b"text\nx\n")
    with pytest.raises(UploadError, match="Could not read the file as CSV: IndexError"):
        tabular.read_metadata(b"text\nx\n", 1)
    monkeypatch.undo()
    monkeypatch.setattr(tabular.pd, "concat", boom)  # the headerless-metadata path
    with pytest.raises(UploadError, match="Could not read the metadata file: IndexError"):
        tabular.read_metadata(b"sports\nfinance\n", 2)
    monkeypatch.setattr(tabular.np, "load", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(UploadError, match="does not fit in memory"):
        tabular.read_vectors(_npy(np.ones((3, 4))), "v.npy")


@pytest.mark.parametrize("cell", ["=1+1", "+A1", "-2", "@SUM(A1)", "\t=1", "\r=1"])
def test_spreadsheet_safe_quotes_formula_starts(cell):
    # Bug caught: a formula prefix (tab/CR included) exported unguarded.
    assert tabular.spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["plain", "a=b", "", 3, None])
def test_spreadsheet_safe_keeps_other_cells(cell):
    # Bug caught: ordinary cells (or non-strings) altered by the guard.
    assert tabular.spreadsheet_safe(cell) == cell


def test_one_column_csv_with_semicolons_in_the_text():
    # Bug caught: the delimiter sniffer took ';' inside the text for the delimiter and dropped every row.
    table = tabular.read_csv(b"text\nfirst; with a semicolon\nsecond; another one\n")
    assert list(table.frame["text"]) == ["first; with a semicolon", "second; another one"]


def test_semicolon_csv_still_detected():
    table = tabular.read_csv(b"text;label\nhello, world;a\nbye;b\n")
    assert list(table.frame["text"]) == ["hello, world", "bye"] and list(table.frame["label"]) == ["a", "b"]
