"""The heatmap component's binary payload: pure numpy, no Streamlit.

One payload is a single `bytes` object (Streamlit components v2 forwards bytes as they are, no base64, no JSON
of numbers):

    b"ESH1" | uint32 LE header length | header (UTF-8 JSON) | zero padding to 8 bytes | blocks

The header holds what the renderer needs to lay out the map (labels, title, scale, …) and
`blocks = {name: [offset, nbytes]}` (offsets from the start of the block area). Every block is uint8.

Values are quantised to uint16 over the map's fixed scale `[zmin, zmax]`, `u = round((v - zmin) / (zmax - zmin)
* 65535)`, and split into a high byte `hi:<name>` (the colour: 256 levels, error <= 1/255 of the scale) and a low
byte `lo:<name>` (with the high byte, the hovered cell's value to 1/65535 of the scale). The high byte of the
selected view goes first; the low bytes, and the other heads of a layer, follow in a second payload, so the
first draw never waits for them.
"""

from __future__ import annotations

import json
import struct

import numpy as np

MAGIC = b"ESH1"
_ALIGN = 8


def quantise(values: np.ndarray, zmin: float = 0.0, zmax: float = 1.0) -> np.ndarray:
    """uint16 `[...]` of `values` `[...]` over `[zmin, zmax]` (clipped). NaN (filtered cells) becomes 0."""
    span = max(float(zmax) - float(zmin), 1e-12)
    scaled = (np.nan_to_num(np.asarray(values, np.float32), nan=zmin) - zmin) * (65535.0 / span)
    return np.rint(np.clip(scaled, 0, 65535)).astype(np.uint16)


def split(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(high bytes, low bytes) of uint16 `q`, each uint8 of q's shape."""
    return (q >> 8).astype(np.uint8), (q & 0xFF).astype(np.uint8)


def drawn_value(hi: np.ndarray, zmin: float = 0.0, zmax: float = 1.0) -> np.ndarray:
    """What a colour byte stands for: the centre of its 256-step bin. The renderer exposes the same numbers
    (`__esHeatmap.values`) for tests; |drawn - true| <= (128.5 / 65535) * span < span / 255."""
    return zmin + (hi.astype(np.float32) * 256 + 128) / 65535 * (zmax - zmin)


def pack(header: dict, blocks: dict[str, np.ndarray]) -> bytes:
    """One payload (see the module docstring) from a JSON-able `header` and named uint8 arrays."""
    offsets, chunks, at = {}, [], 0
    for name, block in blocks.items():
        raw = np.ascontiguousarray(block, dtype=np.uint8).tobytes()
        offsets[name] = [at, len(raw)]
        pad = -len(raw) % _ALIGN
        chunks.append(raw + b"\0" * pad)
        at += len(raw) + pad
    head = json.dumps({**header, "blocks": offsets}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    head += b" " * (-(len(head) + 8) % _ALIGN)  # JSON ignores trailing spaces; keeps the blocks 8-aligned
    return b"".join([MAGIC, struct.pack("<I", len(head)), head, *chunks])


def unpack(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, {name: uint8 array}) of a payload; the inverse of `pack`."""
    if data[:4] != MAGIC:
        raise ValueError("not a heatmap payload")
    (n,) = struct.unpack("<I", data[4:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    blocks = {
        name: np.frombuffer(data, np.uint8, count=size, offset=base + off)
        for name, (off, size) in header["blocks"].items()
    }
    return header, blocks


def matrix_blocks(name: str, values: np.ndarray, zmin: float, zmax: float, exact: bool = True) -> dict:
    """{"hi:<name>": ..., "lo:<name>": ...} (only "hi:" when not `exact`) for one matrix `[R, C]`."""
    hi, lo = split(quantise(values, zmin, zmax))
    return {f"hi:{name}": hi, f"lo:{name}": lo} if exact else {f"hi:{name}": hi}
