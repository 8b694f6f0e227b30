"""The shared sidebar: model status, device, hub online/offline, chart export format."""

from __future__ import annotations

import streamlit as st

from components import pool, resources
from encoderscope import models, settings


def status_rows() -> list[tuple[str, str]]:
    """(label, value) rows describing bundled models, device and hub connectivity."""
    rows = [(name, "installed" if ok else "missing") for name, ok in models.bundled_status().items()]
    dev = models.device()
    rows.append(("Device", "CUDA GPU" if dev.type == "cuda" else "CPU"))
    rows.append(("Hugging Face Hub", "online" if resources.hub_online() else "offline (bundled and local models only)"))
    if settings.get().public:
        rows.append(("Mode", "public (curated models only)"))
    if queue := queue_status():
        rows.append(("Queue", queue))
    return rows


def queue_status() -> str:
    """The compute pool's queue when jobs wait ("3 jobs waiting, 2 running on 2 workers"), else ""."""
    stats = pool.shared().stats()
    if not stats.queued:
        return ""
    return (f"{stats.queued} job{'s' if stats.queued != 1 else ''} waiting, {stats.running} running on "
            f"{stats.workers} worker{'s' if stats.workers != 1 else ''}")


def render() -> None:
    with st.sidebar:
        st.caption("Status")
        for label, value in status_rows():
            icon = "🟢" if value in ("installed", "online", "CUDA GPU", "CPU") else "🟠"
            st.markdown(f"{icon} **{label}**: {value}")
        st.radio(
            "Chart download format",
            ["png", "svg"],
            key="image_format",
            horizontal=True,
            help="What the camera button in each chart's toolbar saves.",
        )
