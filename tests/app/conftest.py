"""AppTest helpers: run a page script headless and read its figures."""

from __future__ import annotations

import json
from pathlib import Path

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
