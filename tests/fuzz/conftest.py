"""Checks shared by the fuzz tests."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from streamlit.testing.v1 import AppTest

# Markup that would act if rendered. A backslash before it is a markdown escape (components/ui.escape_markdown):
# "\<script\>" or "onerror\=" shows as inert text.
RAW_HTML = re.compile(r"(?<!\\)<\s*(script|img|svg|iframe|b|a|style)\b|\bon(error|load|click)\s*=|javascript:", re.I)
# Plotly renders a subset of HTML in chart text. Our templates use <b>/<br>; a hostile tag from user text
# would arrive unescaped as one of these (escaped text such as "&lt;svg onload=…&gt;" is inert).
CHART_HTML = re.compile(r"<\s*(script|img|svg|iframe|style|a\s)", re.I)
# A catch-all handler's message names the exception class after a colon ("Could not run the model on this text:
# IndexError: …", formerly "The model could not process this text: …"): the page met input it does not handle.
CATCH_ALL = re.compile(r"could not process|:\s*[A-Z]\w*(Error|Exception)\b")


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


def boxes(at: AppTest, kinds=("error", "warning", "info", "success")) -> list[str]:
    """The text of every message box of these kinds, as shown (markdown escapes removed)."""
    return [m.value.replace("\\", "") for kind in kinds for m in getattr(at, kind)]


def url_notice(name: str, raw: str, hi: int, allowed: tuple[str, ...] = ()) -> str | None:
    """The notice (a regex) a page owes for `?{name}=raw` on a 0..hi integer parameter, or None for a valid
    value (or one of `allowed`, such as head=mean)."""
    if raw in allowed:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        return f"Ignored {name}={re.escape(raw)} in the URL: it is not a number"
    return None if 0 <= value <= hi else f"{name}={value} in the URL is out of range 0–{hi}"


def shows_result(at: AppTest) -> bool:
    """A chart, an image or a custom component (the canvas heatmaps) is on the page."""
    return bool(at.get("plotly_chart") or at.get("image") or at.get("bidi_component"))


def assert_survived(
    at: AppTest,
    expect: str | None = None,
    result: Callable[[AppTest], bool] = shows_result,
    allow: str | None = None,
) -> None:
    """The page handled hostile input: no uncaught exception, no user HTML in markdown, message boxes or charts
    (Plotly renders text as HTML), no catch-all error, and then

    - `expect` None: the input is one the page accepts, so `result(at)` holds and no error box shows, except
      ones matching `allow` (another section's own message, e.g. a word that is not in the corpus);
    - `expect` a regex: a message box matches it (the specific message for this input).
    """
    assert not at.exception, [e.value for e in at.exception][:1]
    raw = [m.value for kind in ("markdown", "caption", "title", "error", "warning", "info", "success") for m in getattr(at, kind)]
    for text in raw:
        assert not RAW_HTML.search(text or ""), f"raw HTML: {text[:200]}"
    for chart in at.get("plotly_chart"):
        for text in _strings(json.loads(chart.proto.spec)):
            assert not CHART_HTML.search(text), f"raw HTML in a chart: {text[:200]}"
    shown = boxes(at)
    caught = [m for m in shown if CATCH_ALL.search(m)]
    assert not caught, f"a catch-all error: {caught[0][:300]}"
    if expect is not None:
        assert any(re.search(expect, m) for m in shown), f"no message matches {expect!r}; the page showed {shown}"
        return
    errors = [m for m in boxes(at, ("error",)) if not (allow and re.search(allow, m))]
    assert not errors, f"input the page accepts was refused: {errors[0][:300]}"
    assert result(at), f"the page showed no result; messages: {shown}"

