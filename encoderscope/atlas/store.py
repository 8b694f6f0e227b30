"""Opening an atlas folder and exact cosine search over all its vectors.

Search is a float32 matrix-vector product over the memory-mapped `[N, D]` vectors in chunks (bounded memory,
no index to build or go stale), keeping the running top k: exact, and at 10^6 x 384 about 0.1 s warm here.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import AtlasError

SEARCH_CHUNK = 131_072  # rows per matmul: [chunk, D] float32 = 200 MB at D = 384


@dataclass
class Atlas:
    """points: DataFrame (id, x, y, cluster, text[, label]); vectors: `[N, D]` float32 memory-mapped;
    clusters: DataFrame (cluster, size, x, y, name); duplicates: DataFrame (a, b, cosine); meta: atlas.json."""

    path: Path
    points: object
    vectors: np.ndarray
    clusters: object
    duplicates: object
    meta: dict


def load(path: str | Path) -> Atlas:
    """Open the atlas in folder `path` (see `encoderscope.atlas.builder`); AtlasError when it is missing or incomplete."""
    import pandas as pd

    path = Path(path)
    if not (path / "atlas.json").is_file():
        what = "an unfinished or failed build" if (path / ".shards").exists() or path.is_dir() else "no folder"
        raise AtlasError(f"{str(path)!r} holds no complete atlas (no atlas.json: {what}). Run `atlas build` first.")
    if not (path / "vectors.npy").is_file():  # said plainly: numpy's FileNotFoundError would name the server path
        raise AtlasError(f"The atlas in {str(path)!r} has no vectors (vectors.npy is missing), so it cannot be "
                         "searched or have features. Build it again with `atlas build`.")
    try:
        meta = json.loads((path / "atlas.json").read_text())
        vectors = np.load(path / "vectors.npy", mmap_mode="r", allow_pickle=False)
        points = pd.read_parquet(path / "points.parquet")
        clusters = pd.read_parquet(path / "clusters.parquet")
        dup_path = path / "duplicates.parquet"
        duplicates = pd.read_parquet(dup_path) if dup_path.is_file() else pd.DataFrame(columns=["a", "b", "cosine"])
    except Exception as err:  # any unreadable file: the message, never a traceback
        raise AtlasError(f"The atlas in {str(path)!r} is damaged: {type(err).__name__}: {str(err)[:200]}") from err
    if vectors.ndim != 2 or len(vectors) != len(points) or len(points) != meta.get("N"):
        raise AtlasError(
            f"The atlas in {str(path)!r} is inconsistent: {len(points)} points, vectors {vectors.shape}, "
            f"atlas.json says N = {meta.get('N')}. Build it again."
        )
    return Atlas(path, points, vectors, clusters, duplicates, meta)


@functools.lru_cache(maxsize=2)
def _encoder(ref: str, revision: str | None):
    from ..models import load_encoder

    return load_encoder(ref, revision=revision)


def query_vector(atlas: Atlas, query) -> np.ndarray:
    """`query` as an L2-normalised float32 `[D]`: a text (embedded with the atlas's model), a point id (int), or
    a vector `[D]`."""
    D = atlas.vectors.shape[1]
    if isinstance(query, str):
        model = atlas.meta.get("model")
        if not model:
            raise AtlasError(
                "This atlas was built from precomputed vectors without --model, so it cannot embed a text: "
                "search needs a vector or a point (an id). Rebuild with --model naming the model that made the "
                "vectors to search by text."
            )
        from ..embeddings import embed

        vec = embed(_encoder(model, atlas.meta.get("revision")), [query], pooling=atlas.meta.get("pooling") or "auto")[0]
        if vec.shape[0] != D:
            raise AtlasError(f"The model {model!r} gives {vec.shape[0]}-d vectors but the atlas holds {D}-d ones.")
        return vec
    if isinstance(query, (int, np.integer)):
        if not 0 <= int(query) < len(atlas.vectors):
            raise AtlasError(f"No point with id {query}: ids run from 0 to {len(atlas.vectors) - 1}.")
        return np.asarray(atlas.vectors[int(query)], np.float32)
    vec = np.asarray(query, np.float32)
    if vec.ndim == 2 and vec.shape[0] == 1:
        vec = vec[0]
    if vec.ndim != 1:
        raise AtlasError(f"A query vector must have shape [{D}]; got {vec.shape}.")
    if vec.shape[0] != D:
        raise AtlasError(f"The query vector has {vec.shape[0]} dimensions but the atlas holds {D}-d vectors.")
    norm = float(np.linalg.norm(vec))
    if not np.isfinite(norm) or norm == 0:
        raise AtlasError("The query vector is all zeros or holds NaN/inf, so it has no cosine with anything.")
    return vec / norm


def search(atlas: Atlas, query, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by cosine over all vectors: (ids `[k]` int64, cosines `[k]` float32), best first.

    `query`: a text, a point id, or a vector `[D]` (see `query_vector`)."""
    q = query_vector(atlas, query)
    V = atlas.vectors
    k = max(0, min(int(k), len(V)))
    best_ids = np.empty(0, np.int64)
    best_cos = np.empty(0, np.float32)
    for start in range(0, len(V), SEARCH_CHUNK):
        scores = np.asarray(V[start : start + SEARCH_CHUNK]) @ q  # [chunk]
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        best_ids = np.concatenate([best_ids, top + start])
        best_cos = np.concatenate([best_cos, scores[top]])
        if len(best_ids) > k:
            keep = np.argpartition(-best_cos, k - 1)[:k]
            best_ids, best_cos = best_ids[keep], best_cos[keep]
    order = np.lexsort((best_ids, -best_cos))[:k]
    return best_ids[order], best_cos[order].astype(np.float32)
