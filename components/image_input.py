"""The image input shared by the image pages (/vae, /vision): a sample photo or an upload."""

from __future__ import annotations

import streamlit as st

from components import resources, ui

SAMPLES = {"china.jpg (scikit-learn sample)": "china.jpg", "flower.jpg (scikit-learn sample)": "flower.jpg"}
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]


def image_input(key: str = "image") -> tuple[str, bytes] | None:
    """(name, bytes) of the chosen sample or upload; None with a message when there is none."""
    source = st.radio("Image", ["Sample photo", "Upload"], horizontal=True, key=f"{key}_source")
    if source == "Sample photo":
        name = st.selectbox("Sample", list(SAMPLES), key=f"{key}_sample")
        return name, resources.sample_image_bytes(SAMPLES[name])
    upload = ui.file_uploader("PNG, JPEG, WebP, BMP, GIF (first frame) or TIFF", type=UPLOAD_TYPES, key=f"{key}_upload")
    if upload is None:
        st.info("Upload an image, or pick a sample photo.")
        return None
    return upload.name, upload.getvalue()
