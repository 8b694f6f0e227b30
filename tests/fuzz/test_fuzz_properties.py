"""Property-based fuzzing (hypothesis) of the library entry points that user input reaches first.

The contract: arbitrary text, bytes or images either give a valid result or raise the module's own
user-facing error type (whose message the pages show). Nothing else may escape.
"""

from __future__ import annotations

import csv
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import encoderscope as es
from encoderscope import images, tabular
from encoderscope.tokens import display_tokens

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Text with every Unicode category, surrogates excluded (a browser cannot send them; clean_text drops them).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)


@FAST
@given(text=TEXT, pair=st.none() | TEXT)
def test_attention_any_text(encoder, text, pair):
    if not text.strip():
        try:
            es.attention(encoder, text, pair)
        except ValueError:
            return
        raise AssertionError("empty text must be refused")
    res = es.attention(encoder, text, pair)
    T = len(res.tokens)
    assert res.weights.shape == (6, 12, T, T) and np.isfinite(res.weights).all()
    np.testing.assert_allclose(res.weights.sum(-1), 1.0, atol=1e-4)
    assert len(display_tokens(res.tokens)) == T


def _check_csv(data: bytes) -> None:
    try:
        table = tabular.read_csv(data)
    except tabular.UploadError as err:
        assert str(err)
        return
    for column in table.frame.columns:
        try:
            texts, labels = tabular.texts_and_labels(table.frame, column, None)
        except tabular.UploadError as err:  # e.g. a column with no text
            assert str(err)
            continue
        assert texts and all(isinstance(t, str) and t for t in texts) and len(texts) == len(labels)


@FAST
@given(data=st.binary(max_size=2000) | TEXT.map(lambda t: t.encode("utf-8")))
def test_csv_any_bytes(data):
    _check_csv(data)


@st.composite
def csv_text(draw):
    """Well-formed-ish CSV: random header names (duplicates, blanks, spaces), cells with quotes/newlines."""
    cell = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
    names = draw(st.lists(st.sampled_from(["text", "text ", " text", "", "label", "a", "é"]) | cell, min_size=1,
                          max_size=4))
    rows = draw(st.lists(st.lists(cell, min_size=len(names), max_size=len(names)), max_size=6))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep)
    writer.writerow(names)
    writer.writerows(rows)
    return out.getvalue().encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])))


@FAST
@given(data=csv_text())
def test_csv_structured(data):
    _check_csv(data)


@FAST
@given(data=st.binary(max_size=600))
def test_npy_any_bytes(data):
    for blob in (data, b"\x93NUMPY\x01\x00" + data):
        try:
            vectors = tabular.read_vectors(blob, "x.npy")
        except tabular.UploadError as err:
            assert str(err)
            continue
        assert vectors.ndim == 2 and np.isfinite(vectors).all()


@FAST
@given(
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    mode=st.sampled_from(["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "1", "F"]),
    fmt=st.sampled_from(["PNG", "TIFF", "GIF", "WEBP", "BMP", "JPEG"]),
    cut=st.integers(0, 64),
)
def test_images_any_kind(width, height, mode, fmt, cut):
    from PIL import Image

    buf = io.BytesIO()
    try:
        Image.new(mode, (width, height)).save(buf, fmt)
    except (OSError, ValueError, KeyError):
        return  # Pillow cannot write this mode in this format: not an input a user could upload
    data = buf.getvalue()
    data = data[: len(data) - cut] if cut else data  # truncated files too
    try:
        image, _ = images.open_image(data)
    except images.ImageError as err:
        assert str(err)
        return
    prepared, _ = images.prepare(image, 64)
    assert prepared.mode == "RGB" and prepared.width % 8 == 0 and prepared.height % 8 == 0
