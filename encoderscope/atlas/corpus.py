"""Reading a corpus (CSV/TSV, Parquet, JSON Lines, plain text) or precomputed vectors for an atlas.

Row i of what is read is id i everywhere after this: nothing is ever dropped silently. Bad rows (empty texts,
NaN/inf or all-zero vectors) are refused with the first offending ids, so the user can fix the file; a CSV/TSV
follows the Embeddings page's rule instead (`tabular.corpus_rows`: blank rows, empty texts and rows with more
fields than the header are dropped, each with a notice), so a build the page offers reads the rows it showed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .io import AtlasError, first_rows

PARQUET = (".parquet", ".pq")
JSONL = (".jsonl", ".ndjson")
DELIMITED = (".csv", ".tsv", ".tab")
CHUNK = 65_536  # rows per chunk when scanning vectors (bounded memory for a memory-mapped [N, D] file)


@dataclass
class Corpus:
    """texts `[N]` (non-empty str), labels `[N]` (str) or None, and notices for the user."""

    texts: list[str]
    labels: list[str] | None = None
    notices: list[str] = field(default_factory=list)


def read_corpus(path: str | Path, text_column: str = "text", label_column: str | None = None) -> Corpus:
    """The texts (and labels) of a corpus file, by extension: .parquet, .jsonl/.ndjson, .csv/.tsv, else plain
    text with one document per line (the columns do not apply). Raises AtlasError for anything unusable."""
    path = Path(path)
    if not path.is_file():
        raise AtlasError(f"No corpus file at {str(path)!r}.")
    suffix = path.suffix.lower()
    notices: list[str] = []
    if suffix in PARQUET:
        columns = _read_parquet(path, text_column, label_column)
    elif suffix in JSONL:
        columns = _read_jsonl(path, text_column, label_column)
    elif suffix in DELIMITED:
        columns, notices = _read_delimited(path, text_column, label_column)
    else:
        text, notices = _decode(path)
        columns = {text_column: lines(text)}
        label_column = None
    texts = ["" if t is None else str(t) for t in columns[text_column]]
    if not texts:
        raise AtlasError(f"{path.name} has no rows.")
    empty = np.array([not t.strip() for t in texts])
    if empty.any():
        raise AtlasError(
            f"{path.name}: {int(empty.sum())} empty text(s), at {first_rows(empty)} (0-based row order). Empty "
            "rows are not dropped silently, since ids must stay the row order: remove or fill them."
        )
    labels = None
    if label_column:
        labels = ["" if v is None else str(v) for v in columns[label_column]]
    return Corpus(texts, labels, notices)


def lines(text: str) -> list[str]:
    """`text` split at line feeds only (a CR before one is dropped; a final line break ends the last line).

    Not `str.splitlines()`: it also breaks at U+2028, U+2029, U+0085, form feeds and vertical tabs, which are
    ordinary characters inside a JSON string or a line of text; splitting there shifted every later id (and
    refused valid JSON Lines written with ensure_ascii=False)."""
    out = text.split("\n")
    if out and out[-1] == "":
        out.pop()
    return [line[:-1] if line.endswith("\r") else line for line in out]


def _missing(path: Path, wanted: list[str], found: list[str]) -> None:
    for name in wanted:
        if name not in found:
            listed = ", ".join(repr(c) for c in found[:20]) or "none"
            raise AtlasError(f"{path.name} has no column {name!r}. Its columns: {listed}.")


def _wanted(text_column: str, label_column: str | None) -> list[str]:
    return [text_column] + ([label_column] if label_column else [])


def _read_parquet(path: Path, text_column: str, label_column: str | None) -> dict[str, list]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = _wanted(text_column, label_column)
    try:
        file = pq.ParquetFile(path)
        _missing(path, wanted, file.schema_arrow.names)
        table = file.read(columns=wanted)
    except (pa.ArrowException, OSError) as err:
        detail = (str(err).splitlines() or [""])[0][:200]
        raise AtlasError(f"{path.name} is not a readable Parquet file (truncated or corrupt?): {detail}") from err
    return {name: table.column(name).to_pylist() for name in wanted}


def _decode(path: Path) -> tuple[str, list[str]]:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        return data.decode("latin-1"), [f"{path.name} is not valid UTF-8; it was read as Latin-1."]


def _read_jsonl(path: Path, text_column: str, label_column: str | None) -> dict[str, list]:
    text, _ = _decode(path)
    wanted = _wanted(text_column, label_column)
    columns: dict[str, list] = {name: [] for name in wanted}
    for line_no, line in enumerate(lines(text), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise AtlasError(
                f"{path.name}, line {line_no}: not valid JSON ({err.msg}); the file may be truncated."
            ) from err
        if not isinstance(record, dict):
            raise AtlasError(f"{path.name}, line {line_no}: expected a JSON object per line.")
        if text_column not in record:
            raise AtlasError(f"{path.name}, line {line_no}: no field {text_column!r} (fields: {', '.join(record)[:200]}).")
        for name in wanted:
            columns[name].append(record.get(name))
    return columns


def _read_delimited(path: Path, text_column: str, label_column: str | None) -> tuple[dict[str, list], list[str]]:
    """Through `tabular.read_csv` and `tabular.corpus_rows`, the reader and the rule of the Embeddings page, so a
    build the page offers reads the rows the page showed: blank rows, rows with an empty text and rows with more
    fields than the header are dropped, each with a notice (ids count the rows kept). No row or size cap here."""
    from ..tabular import UploadError, corpus_rows, read_csv

    data = path.read_bytes()
    try:
        table = read_csv(data, max_bytes=len(data), max_rows=len(data) + 1)
    except UploadError as err:
        raise AtlasError(f"{path.name} is not a readable CSV file (malformed or truncated?): {err}") from err
    frame = table.frame
    wanted = _wanted(text_column, label_column)
    _missing(path, wanted, list(frame.columns))
    keep, dropped = corpus_rows(frame, text_column)
    frame = frame[keep]
    return {name: frame[name].fillna("").tolist() for name in wanted}, table.notices + dropped


def read_vectors(path: str | Path) -> np.ndarray:
    """A `[N, D]` float .npy file, memory-mapped; refuses NaN/inf and all-zero rows with their first ids."""
    path = Path(path)
    try:
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise AtlasError(f"{path.name} is not a readable .npy file (truncated or corrupt?): {err}") from err
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise AtlasError(f"{path.name} must hold a non-empty [N, D] array; it has shape {vectors.shape}.")
    if not np.issubdtype(vectors.dtype, np.floating):
        raise AtlasError(f"{path.name} must hold floats; it holds {vectors.dtype}.")
    bad_values = np.zeros(len(vectors), bool)
    zero = np.zeros(len(vectors), bool)
    for start in range(0, len(vectors), CHUNK):
        block = np.asarray(vectors[start : start + CHUNK], np.float32)
        bad_values[start : start + CHUNK] = ~np.isfinite(block).all(axis=1)
        zero[start : start + CHUNK] = ~(block != 0).any(axis=1)
    if bad_values.any():
        raise AtlasError(f"{path.name}: NaN or infinite values at {first_rows(bad_values)}. Fix or remove those rows.")
    if zero.any():
        raise AtlasError(
            f"{path.name}: all-zero vectors (no direction, so no cosine) at {first_rows(zero)}. Fix or remove them."
        )
    return vectors
