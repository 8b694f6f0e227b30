"""Features of an atlas folder: training on its vectors, the files that keep them, and opening them again.

DIR/features.safetensors + features.json   the SAE (see `SAE.save`); the JSON's config holds the atlas fingerprint
DIR/features.parquet                      the `describe` table; Parquet metadata: fvu, dead_fraction, fingerprint
DIR/point_features.parquet                id, features (list of k int32), values (list of k float32) per point

Every file is written atomically. Features are tied to the atlas's vectors by a fingerprint (the atlas's own
build fingerprint when atlas.json has one, else a hash of vectors.npy), so features trained on another atlas
are refused instead of silently colouring the wrong points.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .sae import SAE, FeaturesError, load

SAE_FILE = "features.safetensors"
TABLE_FILE = "features.parquet"
POINTS_FILE = "point_features.parquet"


def open_atlas(folder: str | Path):
    """`es.atlas.load(folder)`, with a clear FeaturesError when the atlas has no vectors to train on."""
    from ..atlas.store import load as load_atlas

    folder = Path(folder)
    if (folder / "atlas.json").is_file() and not (folder / "vectors.npy").is_file():
        raise FeaturesError(f"The atlas in {str(folder)!r} has no vectors (vectors.npy is missing), so there is "
                            "nothing to learn features from. Build it again with `atlas build`.")
    return load_atlas(folder)


def fingerprint(atlas) -> str:
    """The atlas's build fingerprint (atlas.json) with its shape, or else a sha256 of its vectors: 20 hex digits."""
    N, D = atlas.vectors.shape
    own = atlas.meta.get("fingerprint")
    digest = hashlib.sha256(f"{N}x{D}:".encode())
    if own:
        digest.update(str(own).encode())
    else:
        for start in range(0, N, 65_536):
            digest.update(np.ascontiguousarray(atlas.vectors[start : start + 65_536], np.float32).tobytes())
    return digest.hexdigest()[:20]


def write(folder: str | Path, sae: SAE, table, ids: np.ndarray, values: np.ndarray, atlas_fp: str,
          fvu: float, dead: int) -> None:
    """Write the three files of the module docstring into `folder` (each atomically; the SAE last, so a folder
    whose SAE matches the atlas has the tables that go with it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..atlas.io import write_atomic

    folder = Path(folder)
    meta = {"fvu": float(fvu), "dead": int(dead), "dead_fraction": dead / sae.n_features, "fingerprint": atlas_fp}
    sae.config.update(atlas_fingerprint=atlas_fp, fvu=float(fvu), dead=int(dead))
    described = pa.table({
        "feature": pa.array(table["feature"].to_numpy(), pa.int32()),
        "frequency": pa.array(table["frequency"].to_numpy(), pa.float64()),
        "mean_activation": pa.array(table["mean_activation"].to_numpy(), pa.float64()),
        "label": pa.array(table["label"].tolist(), pa.string()),
        "top_ids": pa.array([list(map(int, r)) for r in table["top_ids"]], pa.list_(pa.int64())),
        "top_values": pa.array([list(map(float, r)) for r in table["top_values"]], pa.list_(pa.float32())),
    }).replace_schema_metadata({"encoderscope.features": json.dumps(meta)})
    k = ids.shape[1]
    points = pa.table({
        "id": pa.array(np.arange(len(ids), dtype=np.int64)),
        "features": pa.FixedSizeListArray.from_arrays(pa.array(ids.ravel().astype(np.int32)), k),
        "values": pa.FixedSizeListArray.from_arrays(pa.array(values.ravel().astype(np.float32)), k),
    })
    for name, t in ((TABLE_FILE, described), (POINTS_FILE, points)):
        write_atomic(folder / name, lambda tmp, t=t: pq.write_table(t, tmp))
    sae.save(folder / SAE_FILE)


@dataclass
class AtlasFeatures:
    """sae: the SAE (labels set); table: the describe DataFrame; ids/values: `[N, k]` codes of every point;
    meta: fvu, dead, dead_fraction, fingerprint."""

    sae: SAE
    table: object
    ids: np.ndarray
    values: np.ndarray
    meta: dict


def has_features(folder: str | Path) -> bool:
    folder = Path(folder)
    return all((folder / name).is_file() for name in (SAE_FILE, TABLE_FILE, POINTS_FILE))


def read(folder: str | Path, atlas=None) -> AtlasFeatures:
    """The features of the atlas in `folder`; FeaturesError when there are none, they are damaged, or they
    were made for another atlas (their fingerprint differs from the atlas's)."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    atlas = open_atlas(folder) if atlas is None else atlas
    if not has_features(folder):
        raise FeaturesError(f"The atlas in {str(folder)!r} has no features yet. Train them with "
                            f"`python -m encoderscope atlas features {folder}`.")
    sae = load(folder / SAE_FILE)
    want = fingerprint(atlas)
    have = sae.config.get("atlas_fingerprint")
    if have != want:
        raise FeaturesError(
            f"The features in {str(folder)!r} were made for another atlas (fingerprint {have}, this atlas is "
            f"{want}): their codes would describe other points. Train them again with "
            f"`python -m encoderscope atlas features {folder}`."
        )
    try:
        described = pq.read_table(folder / TABLE_FILE)
        meta = json.loads((described.schema.metadata or {}).get(b"encoderscope.features", b"{}"))
        table = described.to_pandas()
        points = pq.read_table(folder / POINTS_FILE)
        k = sae.k
        ids = points.column("features").combine_chunks().flatten().to_numpy().reshape(-1, k)
        values = points.column("values").combine_chunks().flatten().to_numpy().reshape(-1, k)
    except Exception as err:  # any unreadable file: the message, never a traceback
        raise FeaturesError(f"The features in {str(folder)!r} are damaged: {type(err).__name__}: {str(err)[:200]}") from err
    if len(ids) != len(atlas.vectors) or len(table) != sae.n_features or meta.get("fingerprint") != want:
        raise FeaturesError(f"The feature files in {str(folder)!r} do not match each other or the atlas; "
                            "train them again.")
    table["top_ids"] = [np.asarray(r, np.int64) for r in table["top_ids"]]
    table["top_values"] = [np.asarray(r, np.float32) for r in table["top_values"]]
    sae.labels = table["label"].tolist()
    return AtlasFeatures(sae, table, ids.astype(np.int32), values.astype(np.float32), meta)


def train_atlas(folder: str | Path, n_features: int = 4096, k: int = 32, seed: int = 0, epochs: int | None = None,
                progress=None) -> dict:
    """Train features on the atlas in `folder`, describe them with its texts, write the files. `progress(stage,
    done, total)` with stage "train" (per batch), then "describe" and "write". Returns the meta (fvu, dead, ...)."""
    from .describe import describe
    from .train import train

    report = progress or (lambda stage, done, total: None)
    atlas = open_atlas(folder)
    atlas_fp = fingerprint(atlas)
    sae = train(atlas.vectors, n_features, k, seed=seed, epochs=epochs,
                progress=lambda done, total: report("train", done, total))
    report("describe", 0, 1)
    ids, values = sae.encode(atlas.vectors)
    table = describe(sae, atlas.vectors, atlas.points["text"].astype(str).tolist(), codes=(ids, values))
    fvu = sae.fvu(atlas.vectors)
    dead = int((table["frequency"] == 0).sum())
    report("describe", 1, 1)
    report("write", 0, 1)
    write(folder, sae, table, ids, values, atlas_fp, fvu, dead)
    report("write", 1, 1)
    return {"fvu": fvu, "dead": dead, "dead_fraction": dead / n_features, "fingerprint": atlas_fp,
            "n_features": n_features, "k": k, "N": int(len(ids)), "epochs": sae.config["epochs"]}
