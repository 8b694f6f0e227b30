"""The atlas's one error class and atomic file writes (temporary file in the same folder, then rename).

A write that fails half-way (disk full, killed process) leaves the previous file, or none, never a torn one:
readers only ever see complete files, so a resumed build can trust every shard it finds.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import UserFacingError

FILE_MODE = 0o644  # atlas files: the server's user writes, every reader of the atlas folder reads


class AtlasError(UserFacingError):
    """An atlas could not be built, loaded or searched; `str(err)` says why, for the user."""


def first_rows(mask: np.ndarray, limit: int = 5) -> str:
    """'ids 3, 7 and 12 more' for the True positions of `mask` `[N]` (ids = 0-based input row order)."""
    bad = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in bad[:limit])
    more = f" and {bad.size - limit} more" if bad.size > limit else ""
    return f"id{'s' if bad.size > 1 else ''} {shown}{more}"


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` to fill a temporary file beside `path`, fsync-free rename it onto `path`.

    Any failure removes the temporary file and leaves `path` untouched; a full disk becomes an AtlasError.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp makes 0600; set the mode explicitly (reading the umask means setting it: process-wide state)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise AtlasError(
                f"The disk is full: could not write {path.name} in {path.parent}. Nothing was half-written; "
                "free some space and run the same command again (finished shards are kept)."
            ) from err
        raise AtlasError(f"Could not write {path}: {err.strerror or err}.") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """`np.save` of `array`, atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    return write_atomic(path, write)
