"""The Atlas page's section of the cache layer: opened atlases and their renderer payloads.

An atlas is opened once per server (st.cache_resource, shared and read-only, at most 2 kept: a 10^6-point
atlas holds its texts in memory, ~0.3 GB, while vectors stay memory-mapped), keyed on its folder and the
modification times of its files, so a rebuilt atlas is re-read. Uploaded points are keyed on their sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from components import pool
from components.atlas import payload as atlas_payload
from encoderscope import settings
from encoderscope.errors import UserFacingError

REQUIRED = ("x", "y", "cluster", "text")  # points.parquet columns the page needs (id, label optional)
FILES = ("points.parquet", "atlas.json")


class AtlasOpenError(UserFacingError):
    """An atlas could not be opened; the message says why, for the user."""


@dataclass
class Opened:
    """An atlas as the page uses it. `points` [N rows, index = id = row order]; `atlas` the library's
    object (None for an uploaded points.parquet: no vectors, so no search)."""

    name: str
    points: pd.DataFrame
    clusters: pd.DataFrame | None
    meta: dict = field(default_factory=dict)
    atlas: object | None = None
    key: str = ""  # identifies this atlas's content: its folder and file times, or the upload's sha256


# --- the configured folder ------------------------------------------------------------------


def atlas_root() -> Path | None:
    """The folder atlases are listed from (settings.atlas_dir), or None when there is none."""
    folder = settings.get().atlas_dir
    return Path(folder).expanduser().resolve() if folder else None


def resolve(name: str) -> Path:
    """The folder of atlas `name` inside atlas_root(); refuses anything that would leave it (.., absolute
    paths, symlinks pointing out)."""
    root = atlas_root()
    if root is None:
        raise AtlasOpenError("This server lists no atlas folder: upload a points.parquet instead.")
    target = (root / name).resolve()
    if not _inside(target, root):
        raise AtlasOpenError(f"{name!r} is not an atlas in this server's atlas folder.")
    if not (target / "points.parquet").is_file():
        raise AtlasOpenError(f"No atlas named {name!r} (no points.parquet in it).")
    outside = _files_outside(target, root)
    if outside:
        raise AtlasOpenError(
            f"The atlas {name!r} is refused: its {', '.join(outside)} is a link out of this server's atlas folder "
            "(or not a plain file)."
        )
    return target


# every file the page or es.atlas.load opens in an atlas folder
OPENED = ("points.parquet", "atlas.json", "vectors.npy", "clusters.parquet", "duplicates.parquet")


def _inside(folder: Path, root: Path) -> bool:
    """Whether `folder` (symlinks resolved) is a folder strictly inside `root`."""
    target = folder.resolve()
    return target != root and target.is_relative_to(root)


def _files_outside(folder: Path, root: Path) -> list[str]:
    """The names in OPENED that `folder` holds as something other than a plain file inside `root` once
    symlinks are resolved: `root/a/points.parquet -> /elsewhere/x.parquet` would otherwise be listed and
    read, and a folder named clusters.parquet would be read as a dataset of whatever files it links to."""
    bad = []
    for name in OPENED:
        path = folder / name
        if not (path.exists() or path.is_symlink()):
            continue  # absent files are the loader's business (optional, or a clear "no atlas.json")
        real = path.resolve()
        if not (real.is_relative_to(root) and real.is_file()):
            bad.append(name)
    return bad


def listing() -> pd.DataFrame:
    """One row per atlas in atlas_root(): name, points, model (read from atlas.json; unreadable ones say so)."""
    root = atlas_root()
    rows = []
    if root is not None and root.is_dir():
        found = (p for p in root.iterdir() if (p / "points.parquet").is_file() and _inside(p, root))
        for folder in sorted(p for p in found if not _files_outside(p.resolve(), root)):
            try:
                meta = json.loads((folder / "atlas.json").read_text(encoding="utf-8"))
                rows.append({"name": folder.name, "points": int(meta.get("N", 0)), "model": model_of(meta) or ""})
            except (OSError, ValueError, AttributeError):
                rows.append({"name": folder.name, "points": 0, "model": "(atlas.json unreadable)"})
    return pd.DataFrame(rows, columns=["name", "points", "model"])


def model_of(meta: dict) -> str | None:
    """The model reference in atlas.json: a string, or {name, revision, source} as the build records it."""
    model = meta.get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("ref")
    return str(model) if model else None


def _stamp(folder: Path) -> tuple:
    return tuple((folder / f).stat().st_mtime_ns if (folder / f).exists() else 0 for f in (*FILES, "vectors.npy"))


def open_folder(name: str) -> Opened:
    folder = resolve(name)
    return _open_folder(str(folder), _stamp(folder))


@st.cache_resource(max_entries=2, show_spinner="Opening the atlas …")
def _open_folder(folder: str, stamp: tuple) -> Opened:
    """`stamp` (the files' modification times) is part of the cache key, so a rebuilt atlas is read again."""
    from encoderscope import atlas as es_atlas  # the library half (issue 10 §1)

    name = Path(folder).name
    try:
        atlas = es_atlas.load(folder)
    except Exception as err:  # a truncated or foreign file: say which atlas, never a traceback or server path
        detail = str(err) if isinstance(err, UserFacingError) else f"{type(err).__name__}: {err}"
        raise AtlasOpenError(f"Could not open the atlas {name!r}: " + detail.replace(repr(folder), repr(name))) from err
    points = check_points(atlas.points.reset_index(drop=True))
    clusters = getattr(atlas, "clusters", None)
    meta = dict(getattr(atlas, "meta", {}) or {})
    return Opened(Path(folder).name, points, clusters, meta, atlas, key=f"{folder}@{stamp}")


# --- uploads ---------------------------------------------------------------------------------


def open_upload(data: bytes, filename: str) -> Opened:
    """An uploaded points.parquet, checked from its metadata before any column is read (rows, and the
    uncompressed bytes of the columns the page reads), then read column by column: a small file never
    inflates into gigabytes (a 53 KB file of 4,000 one-MB strings would be 4 GB as a table)."""
    return _open_upload(hashlib.sha256(data).hexdigest(), filename, _data=data)


@st.cache_resource(max_entries=2, show_spinner="Reading the points …")
def _open_upload(digest: str, filename: str, _data: bytes) -> Opened:
    table = read_upload(_data, filename)
    points = check_points(table.to_pandas())
    return Opened(Path(filename).stem, points, None, {"N": len(points)}, key=digest)


def read_upload(data: bytes, filename: str):
    """The columns the page needs (REQUIRED, plus id and label when present) of a points.parquet upload, as
    a pyarrow Table, within settings' max_csv_rows and atlas_upload_bytes. Raises AtlasOpenError, naming the
    limit, before reading anything that would break it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    conf = settings.get()
    try:
        file = pq.ParquetFile(io.BytesIO(data))
        meta, names = file.metadata, file.schema_arrow.names
    except Exception as err:  # pyarrow raises several types for truncated or foreign bytes
        raise AtlasOpenError(f"{filename} is not a readable Parquet file ({type(err).__name__}).") from err
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise AtlasOpenError(f"points.parquet lacks the column(s) {', '.join(missing)}; it needs {', '.join(REQUIRED)}.")
    if meta.num_rows > conf.max_csv_rows:
        raise AtlasOpenError(
            f"{filename} has {meta.num_rows:,} points; uploads are capped at {conf.max_csv_rows:,} on this server. "
            "Larger atlases go in the server's atlas folder (python -m encoderscope atlas build ... --out DIR)."
        )
    wanted = [*REQUIRED, *(c for c in ("id", "label") if c in names)]
    strings = _check_types(filename, file.schema_arrow, wanted)
    declared = sum(
        rg.column(j).total_uncompressed_size
        for rg in (meta.row_group(i) for i in range(meta.num_row_groups))
        for j in range(rg.num_columns)
        if rg.column(j).path_in_schema.split(".")[0] in wanted
    )
    _check_size(filename, declared, conf.atlas_upload_bytes)
    try:
        # every string column stays dictionary-encoded while we measure it: one 1 MB string repeated 4,000
        # times is 1 MB here, and would only become 4 GB in the conversion below
        table = pq.ParquetFile(io.BytesIO(data), read_dictionary=strings).read(columns=wanted)
        expanded = sum(_string_bytes(table.column(c)) for c in strings)
        _check_size(filename, declared + expanded, conf.atlas_upload_bytes)
        for c in strings:
            table = table.set_column(table.schema.get_field_index(c), c, table.column(c).cast(pa.string()))
    except AtlasOpenError:
        raise
    except Exception as err:
        raise AtlasOpenError(f"{filename} is not a readable Parquet file ({type(err).__name__}).") from err
    return table


NUMERIC = ("x", "y", "cluster", "id")  # columns that must be stored as numbers: a string there spells out in full


def _check_types(filename: str, schema, wanted: list[str]) -> list[str]:
    """The string columns among `wanted`, after refusing, from the schema alone (nothing read yet), any
    column whose type the page cannot take: x, y, cluster and id must be integers or floats (a dictionary-
    encoded string `x` is a few bytes in the file and gigabytes once read), text and label flat values (a
    list or struct is not one text per point)."""
    import pyarrow as pa

    strings = []
    for name in wanted:
        kind = schema.field(name).type
        value = kind.value_type if pa.types.is_dictionary(kind) else kind
        if name in NUMERIC:
            if not (pa.types.is_integer(value) or pa.types.is_floating(value)):  # numbers: rows x 8 bytes at most
                raise AtlasOpenError(
                    f"{filename}: the column {name} is stored as {kind}; x, y, cluster and id must be stored as "
                    "numbers (integers or floats)."
                )
        elif pa.types.is_nested(value) or not (
            pa.types.is_string(value) or pa.types.is_large_string(value) or pa.types.is_integer(value)
            or pa.types.is_floating(value) or pa.types.is_boolean(value)
        ):
            raise AtlasOpenError(
                f"{filename}: the column {name} is stored as {kind}; it must hold one string (or number) per "
                "point, not a list or a record."
            )
        elif pa.types.is_string(value) or pa.types.is_large_string(value):
            strings.append(name)
    return strings


def _string_bytes(column) -> int:
    """Bytes `column` (a pyarrow ChunkedArray, dictionary-encoded or not) takes once every value is spelled
    out, counted without spelling them out."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = 0
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            lengths = pc.binary_length(chunk.dictionary.cast(pa.string())).fill_null(0).to_numpy(zero_copy_only=False)
            indices = chunk.indices.fill_null(0).to_numpy(zero_copy_only=False)
            total += int(lengths.astype(np.int64)[indices].sum()) if len(lengths) else 0
        else:
            total += int(pc.sum(pc.binary_length(chunk.cast(pa.string()))).as_py() or 0)
    return total


def _check_size(filename: str, size: int, limit: int) -> None:
    if size > limit:
        raise AtlasOpenError(
            f"{filename} holds about {size / 1e6:,.0f} MB of points and text once read; uploads are capped at "
            f"{limit / 1e6:,.0f} MB on this server (ENCODERSCOPE_ATLAS_UPLOAD_BYTES). Larger atlases go in the "
            "server's atlas folder (python -m encoderscope atlas build ... --out DIR)."
        )


def check_points(points: pd.DataFrame) -> pd.DataFrame:
    """`points` with the columns the page needs, finite float x, y, int cluster and string text; `id`, when
    present, must be the row order (0 .. N-1). Refuses anything else with the first offending rows."""
    missing = [c for c in REQUIRED if c not in points.columns]
    if missing:
        raise AtlasOpenError(
            f"points.parquet lacks the column(s) {', '.join(missing)}; it needs {', '.join(REQUIRED)}."
        )
    if len(points) == 0:
        raise AtlasOpenError("points.parquet has no rows.")
    try:
        x = points["x"].to_numpy(np.float32)
        y = points["y"].to_numpy(np.float32)
        cluster = points["cluster"].to_numpy(np.int64)
    except (TypeError, ValueError) as err:
        raise AtlasOpenError(f"points.parquet: x, y and cluster must be numbers ({err}).") from None
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        raise AtlasOpenError(f"points.parquet has non-finite x or y at rows {_first(bad)}.")
    if "id" in points.columns and not np.array_equal(points["id"].to_numpy(), np.arange(len(points))):
        raise AtlasOpenError("points.parquet: id must be the row order 0 .. N-1.")
    text = points["text"] if pd.api.types.is_string_dtype(points["text"]) else points["text"].astype(str)
    out = pd.DataFrame({"x": x, "y": y, "cluster": cluster, "text": text.reset_index(drop=True)})
    if "label" in points.columns:
        out["label"] = points["label"].astype("string").to_numpy()
    return out


def _first(mask: np.ndarray, limit: int = 5) -> str:
    rows = np.flatnonzero(mask)
    return ", ".join(map(str, rows[:limit])) + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


# --- renderer payloads -----------------------------------------------------------------------


@st.cache_resource(max_entries=4, show_spinner=False)
def payload(_opened: Opened, key: str, colour_by: str) -> tuple[dict, atlas_payload.Colouring]:
    """(points payload, colouring) for `colour_by` in {"cluster", "label"}; `key` is `_opened.key`."""
    colours = atlas_payload.colouring(_opened.points[colour_by])
    pts = _opened.points
    # hover texts only where the payload stays small (about 100k points: ~10 MB); above, click to read
    texts = atlas_payload.hover_texts(pts["text"]) if len(pts) <= settings.get().atlas_hover_points else None
    return atlas_payload.points_payload(pts["x"].to_numpy(), pts["y"].to_numpy(), colours.codes, texts), colours


@st.cache_data(max_entries=32, show_spinner="Searching …")
def search(key: str, query, k: int, _opened: Opened) -> tuple[np.ndarray, np.ndarray]:
    """`es.atlas.search` over `_opened`'s vectors (`key` is `_opened.key`; `query` a point id or a query vector
    `[D]`): an exact scan over up to 10^6 memory-mapped rows, so map clicks and other reruns reuse it."""
    from encoderscope import atlas as es_atlas

    ids, cos = pool.run("atlas search", (key, pool.digest(query), k), es_atlas.search, _opened.atlas, query, k)
    return np.asarray(ids, dtype=np.int64), np.asarray(cos, dtype=np.float64)


@st.cache_resource
def job_registry() -> dict:
    """The background atlas builds of this server (see components/atlas/jobs.py): name -> job."""
    return {}



# --- features (components/atlas/features.py) -------------------------------------------------


@st.cache_resource(max_entries=2, show_spinner="Opening the features …")
def atlas_features(_opened: Opened, key: str):
    """The atlas's SAE features (`encoderscope.features.atlas_files.read`), or None when it has none; a
    FeaturesError (another atlas's features, damaged files) reaches the page's guard. `key` is `_opened.key`."""
    from encoderscope.features import atlas_files

    if _opened.atlas is None or not atlas_files.has_features(_opened.atlas.path):
        return None
    try:
        return atlas_files.read(_opened.atlas.path, _opened.atlas)
    except atlas_files.FeaturesError as err:  # name the atlas, never the server's folder (public mode)
        raise atlas_files.FeaturesError(str(err).replace(str(_opened.atlas.path), _opened.name)) from err


@st.cache_resource(max_entries=4, show_spinner=False)
def feature_payload(_opened: Opened, key: str, feature: int) -> tuple[dict, atlas_payload.Colouring, np.ndarray]:
    """(points payload coloured by one feature's activation, its colouring, the activation `[N]`)."""
    from components.atlas import features as atlas_feature_view

    codes, activation = atlas_feature_view.feature_colouring(atlas_features(_opened, key), feature)
    pts = _opened.points
    texts = atlas_payload.hover_texts(pts["text"]) if len(pts) <= settings.get().atlas_hover_points else None
    data = atlas_payload.points_payload(pts["x"].to_numpy(), pts["y"].to_numpy(), codes.codes, texts)
    return dict(data, palette=atlas_feature_view.PALETTE, feature=feature), codes, activation
