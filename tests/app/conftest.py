"""AppTest helpers: run a page script headless and read its figures."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def app(page: str, query: dict | None = None, timeout: float = 180) -> AppTest:
    """An AppTest for views/<page>.py (or app.py when page == "app"), with URL query parameters."""
    path = ROOT / "app.py" if page == "app" else ROOT / "views" / f"{page}.py"
    at = AppTest.from_file(str(path), default_timeout=timeout)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at


def figures(at: AppTest) -> list[dict]:
    """Every plotly chart on the page as a figure dict (data + layout)."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def messages(at: AppTest) -> str:
    """All error/warning/info text on the page, with markdown escapes removed."""
    parts = [m.value for kind in ("error", "warning", "info") for m in getattr(at, kind)]
    return " ".join(parts).replace("\\", "")


def array(value) -> np.ndarray:
    """A figure array as numpy: plotly >= 6 sends numpy data as base64 typed arrays ({dtype, bdata, shape})."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = [int(n) for n in str(value["shape"]).split(",")] if "shape" in value else [len(flat)]
        return flat.reshape(shape)
    return np.asarray(value, dtype=float)
