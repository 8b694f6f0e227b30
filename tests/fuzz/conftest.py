"""Checks shared by the fuzz tests."""

from __future__ import annotations

import json
import re

from streamlit.testing.v1 import AppTest

RAW_HTML = re.compile(r"<\s*(script|img|svg|iframe|b|a|style)\b|\bon(error|load|click)\s*=|javascript:", re.I)
# Plotly renders a subset of HTML in chart text. Our templates use <b>/<br>; a hostile tag from user text
# would arrive unescaped as one of these (escaped text such as "&lt;svg onload=…&gt;" is inert).
CHART_HTML = re.compile(r"<\s*(script|img|svg|iframe|style|a\s)", re.I)


def _strings(value):
    """Every string inside a figure dict (titles, tick text, hover text, legend names ...)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def assert_survived(at: AppTest, expect_message: bool = False) -> None:
    """No uncaught exception; no user HTML reaches markdown or a chart (Plotly renders text as HTML);
    every run either shows a result (a chart or an image) or a message that says why not."""
    assert not at.exception, [e.value for e in at.exception][:1]
    for element in list(at.markdown) + list(at.caption) + list(at.title):
        assert not RAW_HTML.search(element.value or ""), element.value[:200]
    charts = at.get("plotly_chart")
    for chart in charts:
        for text in _strings(json.loads(chart.proto.spec)):
            assert not CHART_HTML.search(text), f"raw HTML in a chart: {text[:200]}"
    messages = [m.value for kind in ("error", "warning", "info") for m in getattr(at, kind)]
    if expect_message:
        assert messages, "input was rejected without a user-facing message"
    assert charts or at.get("image") or messages, "the page showed neither a result nor a message"
