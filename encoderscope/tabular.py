"""Parsing user uploads for the embeddings explorer: CSV corpora, `.npy` / TSV vectors and their metadata.

Every function takes raw bytes and raises `UploadError` with a user-facing message for bad input.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import settings
from .errors import UserFacingError


class UploadError(UserFacingError):
    """An upload could not be used; `str(err)` says why, for the user."""


def _as_upload_error(what: str):
    """Decorator: any unexpected exception of the wrapped parser becomes an UploadError naming `what`.

    The pages only catch UploadError, so a parser bug or an input nobody thought of still ends in a message,
    never a traceback. UploadError itself passes through unchanged.
    """

    def wrap(func):
        @functools.wraps(func)
        def inner(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except UploadError:
                raise
            except MemoryError as err:
                raise UploadError(f"Could not read {what}: it does not fit in memory.") from err
            except Exception as err:  # the point: no raw traceback reaches the UI
                detail = (str(err).splitlines() or [""])[0][:200]
                raise UploadError(f"Could not read {what}: {type(err).__name__}: {detail}".rstrip(": ")) from err

        return inner

    return wrap


@dataclass
class Table:
    """`frame`: `[rows, columns]` of str (NaN for cells a short row lacks), unique stripped column names.

    `header`: the header row exactly as in the file (before stripping and de-duplication), one str per column.
    """

    frame: pd.DataFrame
    notices: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)


def unique_names(names: list[str]) -> tuple[list[str], list[str]]:
    """(column names, notices): names stripped, empty ones -> "column N", repeats -> "name (2)", "name (3)".

    A generated name never collides with another column's name (e.g. a header "a,a,a (2)").
    """
    base = [str(name).strip() or f"column {i + 1}" for i, name in enumerate(names)]
    taken = set(base)
    out: list[str] = []
    renamed: list[str] = []
    for i, name in enumerate(base):
        if name in out:
            k = 2
            while f"{name} ({k})" in taken:
                k += 1
            renamed.append(f"column {i + 1} {name!r} -> {name + f' ({k})'!r}")
            name = f"{name} ({k})"
            taken.add(name)
        out.append(name)
    notices = [f"Repeated column names were renamed: {', '.join(renamed[:5])}."] if renamed else []
    if len(renamed) > 5:
        notices[0] = notices[0][:-1] + f" and {len(renamed) - 5} more."
    return out, notices


def _looks_binary(data: bytes) -> bool:
    sample = data[:4096]
    if b"\x00" in sample:
        return True
    control = sum(b < 9 or 13 < b < 32 for b in sample)
    return control > 0.05 * max(len(sample), 1)


def decode_text(data: bytes) -> tuple[str, list[str]]:
    """UTF-8 (with or without BOM), else Latin-1 with a notice."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        return data.decode("latin-1"), ["The file is not valid UTF-8; it was read as Latin-1."]


_DELIMITERS = ",;\t|"


def _delimiter(text: str) -> str:
    """The delimiter of a CSV text. It must split the header line: the sniffer alone takes a ';' inside a
    one-column file's text for the delimiter, and every row would then be dropped for having too many fields."""
    sample = text[:20_000]
    header = next((line for line in sample.splitlines() if line.strip()), "")
    in_header = {d: header.count(d) for d in _DELIMITERS if d in header}
    if not in_header:
        return ","  # one column
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    return sniffed if sniffed in in_header else max(in_header, key=in_header.get)


def parse_delimited(text: str, max_rows: int | None = None, bad_lines: str = "skip") -> tuple[pd.DataFrame, list[str], str, int]:
    """The one reader of delimited corpora (the Embeddings page and `atlas build` both use it, so they agree on
    rows and ids): `text` -> (frame `[rows, columns]` of str, the header as in the file, the delimiter, the
    number of skipped bad lines). Sniffs `,` `;` tab `|`; quoted newlines are kept; blank lines are rows.

    `bad_lines`: "skip" (rows with more fields than the header are counted and skipped) or "error" (raise
    UploadError naming the line of the first one). `max_rows`: read at most this many data rows (None: all)."""
    sep = _delimiter(text)
    csv.field_size_limit(max(len(text), 131_072))  # a huge quoted field is bounded by the text itself
    skipped: list[int] = []

    def skip(fields: list[str]) -> None:
        skipped.append(len(fields))

    try:
        # header=None: the header row comes back verbatim (pandas would rename repeats to "a.1" and empty
        # names to "Unnamed: 1", and keep "a" and "a " apart); unique_names does it explicitly.
        raw = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            nrows=None if max_rows is None else max_rows + 1,  # + the header row
            engine="python",
            on_bad_lines="error" if bad_lines == "error" else skip,  # pandas' error names the line
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError) as err:
        raise UploadError(f"Could not read the file as CSV: {(str(err).splitlines() or [''])[0][:200]}") from err
    if raw.shape[1] == 0 or len(raw) < 1:
        raise UploadError("The CSV has no data rows.")
    header = ["" if pd.isna(name) else str(name) for name in raw.iloc[0]]
    return raw.iloc[1:].reset_index(drop=True), header, sep, len(skipped)


@_as_upload_error("the file as CSV")
def read_csv(data: bytes, max_bytes: int | None = None, max_rows: int | None = None) -> Table:
    """A CSV/TSV upload as a `[rows, columns]` DataFrame of strings, through `parse_delimited` (the reader
    `atlas build` uses too). Empty rows are dropped, with a notice; over `max_rows` rows the first rows are
    kept, with a notice; rows with more fields than the header are skipped, with a notice.

    Column names are the header's, stripped and made unique (see :func:`unique_names`), so `frame[name]` is
    always one column.
    """
    conf = settings.get()
    max_bytes = conf.max_csv_bytes if max_bytes is None else max_bytes
    max_rows = conf.max_csv_rows if max_rows is None else max_rows
    if not data:
        raise UploadError("The file is empty (0 bytes).")
    if len(data) > max_bytes:
        raise UploadError(f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.")
    if _looks_binary(data):
        raise UploadError("This does not look like a CSV file (it contains binary data).")
    text, notices = decode_text(data)
    # blank lines are read as rows and dropped below: read a little past the cap so that they do not count
    frame, header, sep, skipped = parse_delimited(text, max_rows=max_rows + 1 + text.count("\n\n"))
    names, renamed = unique_names(header)
    notices += renamed
    frame = frame.set_axis(names, axis=1)
    blank = (frame.apply(lambda col: col.fillna("").str.strip()) == "").all(axis=1)  # rows that are all empty
    frame = frame[~blank]
    if blank.any():
        notices.append(f"{int(blank.sum()):,} blank row(s) were dropped.")
    if frame.empty:
        raise UploadError("The CSV has no data rows.")
    if len(frame) > max_rows:
        frame = frame.head(max_rows)
        notices.append(f"The file has more than {max_rows:,} rows; the first {max_rows:,} are used.")
    if skipped:
        notices.append(f"{skipped:,} row(s) with more fields than the header were skipped.")
    if sep != ",":
        notices.append(f"Detected {'tab' if sep == chr(9) else repr(sep)} as the delimiter.")
    return Table(frame.reset_index(drop=True), notices, header)


def corpus_rows(frame: pd.DataFrame, text_column: str) -> tuple[np.ndarray, list[str]]:
    """The one rule for which rows of a delimited corpus (`read_csv`'s frame) are texts, shared by the
    Embeddings page (`texts_and_labels`) and `atlas build`: a row whose text is empty or blank is dropped, with
    a notice. Returns (keep `[rows]` bool, notices)."""
    keep = (frame[text_column].fillna("").astype(str).str.strip() != "").to_numpy()
    dropped = int((~keep).sum())
    return keep, [f"{dropped:,} row(s) with an empty {text_column!r} were dropped."] if dropped else []


@_as_upload_error("the columns")
def texts_and_labels(frame: pd.DataFrame, text_column: str, label_column: str | None) -> tuple[list[str], list[str]]:
    """Non-empty texts of `text_column` (stripped) and their labels ("(no label)" for empty/NaN labels); which
    rows count is `corpus_rows`' rule."""
    if text_column not in frame:
        raise UploadError(f"There is no column {text_column!r} in the file.")
    if label_column and label_column not in frame:
        raise UploadError(f"There is no column {label_column!r} in the file.")
    for name in {text_column, label_column} - {None}:
        if isinstance(frame[name], pd.DataFrame):  # a frame not from read_csv, whose names are unique
            raise UploadError(f"There are several columns named {name!r}; give them different names.")
    texts = frame[text_column].fillna("").astype(str).str.strip()
    keep = pd.Series(corpus_rows(frame, text_column)[0], index=frame.index)
    if not keep.any():
        raise UploadError(f"The column {text_column!r} has no text.")
    labels = frame[label_column].fillna("").astype(str).str.strip() if label_column else pd.Series([""] * len(frame))
    labels = labels.where(labels != "", "(no label)")
    return texts[keep].tolist(), labels[keep.to_numpy()].tolist()


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 1_000_000 else f"{n / 1e6:,.1f} MB"


def _check_npy_size(data: bytes) -> None:
    """Refuse a .npy whose header promises more data than the file holds (before allocating anything)."""
    from numpy.lib import format as npy

    buf = io.BytesIO(data)
    try:
        version = npy.read_magic(buf)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = read_header(buf, max_header_size=10_000)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as err:
        raise UploadError(f"Could not read the .npy file: its header is damaged ({str(err)[:120]}).") from err
    if dtype.hasobject:
        raise UploadError("This .npy holds Python objects (a pickle); only numeric arrays are accepted.")
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if expected > len(data) - buf.tell():
        raise UploadError(
            f"The .npy header says shape {shape} ({_size(expected)}) but the file holds "
            f"{_size(len(data) - buf.tell())} of data: it is truncated or damaged."
        )


@_as_upload_error("the vectors file")
def read_vectors(data: bytes, name: str = "vectors.npy") -> np.ndarray:
    """Embeddings `[N, D]` from a `.npy` (no pickles) or a TSV/CSV of numbers (Embedding Projector format)."""
    if not data:
        raise UploadError("The vectors file is empty (0 bytes).")
    if data[:4] == b"PK\x03\x04":
        raise UploadError("This is a zip/.npz archive; upload one array saved with np.save (.npy).")
    if data[:6] == b"\x93NUMPY":
        _check_npy_size(data)
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as err:
            if "pickle" in str(err).lower():
                raise UploadError(
                    "This .npy holds Python objects (a pickle); only numeric arrays are accepted."
                ) from err
            raise UploadError(f"Could not read the .npy file: its header is damaged ({str(err)[:120]}).") from err
        except (OSError, EOFError) as err:
            raise UploadError(f"Could not read the .npy file: it is truncated or damaged ({str(err)[:120]}).") from err
    elif name.lower().endswith(".npy"):
        raise UploadError("This is not a .npy file (no NumPy header); save the array with np.save.")
    elif len(data) > settings.get().max_csv_bytes:
        raise UploadError(
            f"The text vectors file is {len(data) / 1e6:.1f} MB; the limit is "
            f"{settings.get().max_csv_bytes / 1e6:.0f} MB (a .npy file has no limit but the upload's)."
        )
    else:
        if _looks_binary(data):
            raise UploadError("The vectors file is neither a .npy array nor text.")
        text, _ = decode_text(data)
        try:
            array = np.loadtxt(
                io.StringIO(text), delimiter="\t" if "\t" in text[:10_000] else ",", dtype=np.float64, ndmin=2
            )
        except ValueError as err:
            raise UploadError(f"The vectors file has non-numeric values: {str(err)[:200]}") from err
    if array.dtype.kind not in "fiu":
        raise UploadError(f"The array has dtype {array.dtype}; a numeric [N, D] array is needed.")
    if array.ndim != 2:
        raise UploadError(f"The array has shape {array.shape}; an [N, D] array (2 dimensions) is needed.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise UploadError(f"The array has shape {array.shape}; it is empty.")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise UploadError(f"{bad} row(s) contain NaN or infinite values.")
    return array.astype(np.float32)


@_as_upload_error("the metadata file")
def read_metadata(data: bytes, n_vectors: int) -> tuple[list[str], list[str], list[str]]:
    """(texts, labels, notices) from a metadata CSV/TSV with one row per vector.

    Uses columns named text/sentence and label/class when present, else the first (and second) column.
    A single-column file (the Embedding Projector's metadata without header) gives labels only.
    """
    table = read_csv(data, max_rows=max(n_vectors, 1) + 1)
    frame = table.frame
    lower = {c.lower(): c for c in frame.columns}
    text_col = next((lower[c] for c in ("text", "sentence", "sentences") if c in lower), None)
    label_col = next((lower[c] for c in ("label", "labels", "class", "category") if c in lower), None)
    if text_col is None and label_col is None:
        if frame.shape[1] == 1:  # headerless single column: the header row is data too
            label_col = frame.columns[0]
            first = pd.DataFrame({label_col: [table.header[0].strip()]})  # the label as written, not "column 1"
            frame = pd.concat([first, frame], ignore_index=True)
        else:
            text_col, label_col = frame.columns[0], frame.columns[1]
    if len(frame) != n_vectors:
        raise UploadError(f"The metadata has {len(frame)} rows but there are {n_vectors} vectors; they must match.")
    texts = frame[text_col].fillna("").astype(str).tolist() if text_col else [f"#{i}" for i in range(n_vectors)]
    labels = (
        frame[label_col].fillna("").astype(str).replace("", "(no label)").tolist()
        if label_col
        else ["(no label)"] * n_vectors
    )
    return texts, labels, table.notices


# A cell starting with one of these runs as a formula in a spreadsheet (OWASP "CSV injection"); tab and
# carriage return are on the list because some spreadsheets strip them and then read the next character.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """`value` with a leading quote when a spreadsheet would run it as a formula; other values unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
