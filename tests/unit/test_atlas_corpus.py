"""Reading atlas input: every format gives the same texts in row order; bad input is refused with the first
offending rows, never dropped (ids must stay the row order)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from encoderscope.atlas.corpus import read_corpus, read_vectors
from encoderscope.atlas.io import AtlasError
from encoderscope.errors import UserFacingError

TEXTS = ["first, with a comma", 'a "quoted" word', "line three", "=1+1 stays text"]
LABELS = ["a", "b", "a", "c"]


def _write_all(tmp_path):
    frame = pd.DataFrame({"text": TEXTS, "label": LABELS, "other": range(4)})
    frame.to_csv(tmp_path / "c.csv", index=False)
    frame.to_csv(tmp_path / "c.tsv", index=False, sep="\t")
    frame.to_parquet(tmp_path / "c.parquet")
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in frame.to_dict("records")) + "\n")
    return ["c.csv", "c.tsv", "c.parquet", "c.jsonl"]


def test_every_format_reads_the_same_rows_in_order(tmp_path):
    for name in _write_all(tmp_path):
        corpus = read_corpus(tmp_path / name, "text", "label")
        assert corpus.texts == TEXTS, name
        assert corpus.labels == LABELS, name


def test_plain_text_is_one_document_per_line(tmp_path):
    (tmp_path / "c.txt").write_text("\n".join(TEXTS) + "\n")
    corpus = read_corpus(tmp_path / "c.txt")
    assert corpus.texts == TEXTS and corpus.labels is None


def test_missing_text_column_lists_the_columns(tmp_path):
    for name in _write_all(tmp_path):
        with pytest.raises(AtlasError, match="body") as err:
            read_corpus(tmp_path / name, "body")
        assert isinstance(err.value, UserFacingError)
        assert name.endswith("jsonl") or "'text'" in str(err.value)  # the columns it does have


def test_empty_texts_are_refused_with_their_ids(tmp_path):
    (tmp_path / "e.txt").write_text("ok\n\nfine\n   \nx\n")
    with pytest.raises(AtlasError, match=r"2 empty text\(s\), at ids 1, 3"):
        read_corpus(tmp_path / "e.txt")
    (tmp_path / "e.jsonl").write_text('{"text": "ok"}\n{"text": null}\n')
    with pytest.raises(AtlasError, match="at id 1 "):
        read_corpus(tmp_path / "e.jsonl")


def test_truncated_parquet_is_refused(tmp_path):
    pd.DataFrame({"text": TEXTS * 100}).to_parquet(tmp_path / "c.parquet")
    data = (tmp_path / "c.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(AtlasError, match="not a readable Parquet file"):
        read_corpus(tmp_path / "cut.parquet")


def test_truncated_jsonl_names_the_line(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n{"text": "c')
    with pytest.raises(AtlasError, match="line 3: not valid JSON"):
        read_corpus(tmp_path / "c.jsonl")


def test_malformed_csv_is_refused(tmp_path):
    (tmp_path / "bad.csv").write_text('text,label\n"ok",a\n"never closed,b\n')
    with pytest.raises(AtlasError, match="not a readable CSV"):
        read_corpus(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    ("row", "value", "match"),
    [(2, np.nan, r"NaN or infinite values at id 2\b"), (5, np.inf, "at id 5"), (3, 0.0, r"all-zero vectors .* at id 3\.")],
)
def test_bad_vectors_are_refused_with_the_first_row(tmp_path, row, value, match):
    vectors = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    vectors[row] = value if value == 0 else vectors[row]
    if value != 0:
        vectors[row, 1] = value
    np.save(tmp_path / "v.npy", vectors)
    with pytest.raises(AtlasError, match=match):
        read_vectors(tmp_path / "v.npy")


def test_truncated_npy_is_refused(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((100, 8), np.float32))
    data = (tmp_path / "v.npy").read_bytes()
    (tmp_path / "v.npy").write_bytes(data[:-100])
    with pytest.raises(AtlasError, match="truncated or corrupt"):
        read_vectors(tmp_path / "v.npy")


SEPARATORS = ["\u2028", "\u2029", "\u0085", "\x0c", "\x0b", "\x1c"]  # str.splitlines() breaks at each


def test_jsonl_and_text_split_on_line_feeds_only(tmp_path):
    # Bug: str.splitlines() also split at U+2028/U+2029/U+0085 and form feeds: valid JSON Lines written with
    # ensure_ascii=False were refused, and a form feed in a text line shifted every later id.
    texts = [f"before{sep}after {i}" for i, sep in enumerate(SEPARATORS)] + ["plain"]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts),
                                      encoding="utf-8")
    assert read_corpus(tmp_path / "c.jsonl").texts == texts
    (tmp_path / "c.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert read_corpus(tmp_path / "c.txt").texts == texts
    (tmp_path / "crlf.txt").write_bytes(b"one\r\ntwo\x0cstill two\r\nthree")  # Windows line ends
    assert read_corpus(tmp_path / "crlf.txt").texts == ["one", "two\x0cstill two", "three"]


def test_the_cli_and_the_page_read_a_delimited_corpus_alike(tmp_path):
    # Bug: two readers (the page's tabular.read_csv and the CLI's own pandas call) that disagreed on rows: a
    # corpus built from the page then had ids that did not match the CSV's rows.
    from encoderscope import tabular

    texts = ["semi; colon", 'quote "inside"', "multi\nline", "tab\there", "  padded  ", "é accent"]
    for sep, name in ((",", "c.csv"), (";", "s.csv"), ("\t", "t.tsv")):
        pd.DataFrame({"text": texts, "n": range(len(texts))}).to_csv(tmp_path / name, index=False, sep=sep)
        page = tabular.read_csv((tmp_path / name).read_bytes()).frame
        cli = read_corpus(tmp_path / name, "text", "n")
        assert cli.texts == page["text"].tolist() == texts, name
        assert cli.labels == page["n"].tolist()


def test_a_csv_the_page_reads_builds_the_same_rows(tmp_path):
    # Bug (issue 24 §5): the page dropped blank rows and skipped ragged ones with a notice while `atlas build`
    # refused both, so the page offered a background build bound to fail. One reader, one rule.
    from encoderscope import tabular

    data = b'text,label\nfirst,a\n\n,b\n"  second  ",c\nthird,d,extra\n, \nfourth,\n\n'
    (tmp_path / "c.csv").write_bytes(data)
    page = tabular.read_csv(data)
    texts, labels = tabular.texts_and_labels(page.frame, "text", "label")
    built = read_corpus(tmp_path / "c.csv", "text", "label")
    assert texts == ["first", "second", "fourth"] and labels == ["a", "c", "(no label)"]
    assert [t.strip() for t in built.texts] == texts and built.labels == ["a", "c", ""]
    notices = " ".join(built.notices)
    assert "3 blank row(s) were dropped" in notices  # the empty lines and ", "
    assert "1 row(s) with more fields than the header were skipped" in notices
    assert "1 row(s) with an empty 'text' were dropped" in notices
