"""Resumable embedding: vectors in fixed-size shards, each written atomically under a fingerprint.

The fingerprint covers the corpus content, the model (name, revision), the pooling and the shard size, so a
shard found on disk is known to be exactly what this run would compute. A killed run continues with the
missing shards; a changed fingerprint starts over (older shard folders are removed).

Layout: `DIR/.shards/<fingerprint>/shard-000042.npy`, each float32 `[rows, D]` for ids
`42 * size .. 42 * size + rows - 1`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .io import save_npy, write_atomic


def fingerprint(texts: Iterable[str], **settings) -> str:
    """sha256 (first 20 hex digits) of every text (length-prefixed, so boundaries count) and `settings`."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:20]


class ShardStore:
    """Shards of `n` rows in groups of `size` under `root/<fp>`; other fingerprints' folders are removed."""

    def __init__(self, root: str | Path, fp: str, n: int, size: int):
        if size < 1:
            raise ValueError("shard size must be at least 1")
        self.root, self.fp, self.n, self.size = Path(root), fp, n, size
        self.folder = self.root / fp
        if self.root.is_dir():
            for other in self.root.iterdir():
                if other.name != fp:
                    shutil.rmtree(other, ignore_errors=True) if other.is_dir() else other.unlink(missing_ok=True)
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def count(self) -> int:
        return -(-self.n // self.size)

    def rows(self, shard: int) -> range:
        """The ids shard `shard` holds."""
        return range(shard * self.size, min(self.n, (shard + 1) * self.size))

    def path(self, shard: int) -> Path:
        return self.folder / f"shard-{shard:06d}.npy"

    def missing(self) -> list[int]:
        """Shards not yet on disk (a shard file exists only once it is complete: see `write`)."""
        return [s for s in range(self.count) if not self.path(s).is_file()]

    def write(self, shard: int, vectors: np.ndarray) -> None:
        """Store shard `shard`, float32 `[len(rows(shard)), D]`, atomically."""
        expected = len(self.rows(shard))
        if vectors.ndim != 2 or vectors.shape[0] != expected:
            raise ValueError(f"shard {shard} should have {expected} rows, got shape {vectors.shape}")
        save_npy(self.path(shard), np.ascontiguousarray(vectors, np.float32))

    def assemble(self, out: str | Path, order: np.ndarray | None = None) -> Path:
        """All shards into `out` (float32 `[n, D]` .npy), atomically, without holding them in memory.

        `order` `[n]`: shard position p holds id `order[p]` (the corpus sorted by length); None: position = id.
        """
        first = np.load(self.path(0), mmap_mode="r", allow_pickle=False)

        def write(tmp: Path) -> None:
            full = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(self.n, first.shape[1]))
            for shard in range(self.count):
                rows = self.rows(shard)
                block = np.load(self.path(shard), mmap_mode="r", allow_pickle=False)
                if order is None:
                    full[rows.start : rows.stop] = block
                else:
                    full[order[rows.start : rows.stop]] = block
            full.flush()
            del full

        return write_atomic(out, write)

    def save_info(self, info: dict) -> None:
        """What the shards were made with (e.g. the pooling mode the workers resolved), atomically."""
        write_atomic(self.folder / "info.json", lambda tmp: tmp.write_text(json.dumps(info)))

    def info(self) -> dict:
        path = self.folder / "info.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @staticmethod
    def discard(root: str | Path) -> None:
        """Remove every shard under `root` (once the assembled vectors are safely written)."""
        shutil.rmtree(root, ignore_errors=True)
