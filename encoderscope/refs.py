"""What a typed model or VAE reference is: a Hugging Face hub id or a local path, from the string alone.

One rule set for `models` and `vae`, decided without touching the disk, so a server that refuses local paths
answers an existing and a missing path alike:

- a path starts with '/', '.' or '~', or contains '\\', '..' or more than one '/', or ends like a weights or
  config file (.safetensors, .pth, .bin, .ckpt, .json);
- a hub id is anything else that matches `HUB_ID`: "name" or "owner/name", letters, digits, '.', '_', '-'.
"""

from __future__ import annotations

import re

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")  # a branch, tag or commit hash
FILE_SUFFIXES = (".safetensors", ".pth", ".json", ".bin", ".ckpt")


def looks_like_path(text: str) -> bool:
    """Whether `text` reads as a filesystem path rather than a hub id (nothing on disk is looked at)."""
    return (
        text.startswith(("/", ".", "~"))
        or "\\" in text
        or ".." in text
        or text.count("/") > 1
        or text.lower().endswith(FILE_SUFFIXES)
    )


def is_hub_id(text: str) -> bool:
    """Whether `text` is a well-formed hub id ("name" or "owner/name") and does not read as a path."""
    return not looks_like_path(text) and bool(HUB_ID.match(text))


def is_revision(revision: str) -> bool:
    """Whether `revision` is a well-formed branch, tag or commit hash (no spaces, no shell characters)."""
    return bool(REVISION.match(revision))


def unusable(text: str, max_length: int) -> bool:
    """A reference nobody could mean: longer than `max_length` characters or holding a NUL character."""
    return "\x00" in text or len(text) > max_length
