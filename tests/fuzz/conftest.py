"""Checks shared by the fuzz tests."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

RAW_HTML = re.compile(r"<\s*(script|img|svg|iframe|b)\b", re.I)


def assert_survived(at: AppTest, expect_message: bool = False) -> None:
    """No uncaught exception; no markdown element renders raw user HTML; a rejection says why."""
    assert not at.exception, [e.value for e in at.exception][:1]
    for element in list(at.markdown) + list(at.caption) + list(at.title):
        assert not RAW_HTML.search(element.value or ""), element.value[:200]
    if expect_message:
        messages = [m.value for kind in ("error", "warning", "info") for m in getattr(at, kind)]
        assert messages, "input was rejected without a user-facing message"
