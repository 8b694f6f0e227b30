"""Shareable links: the URL keeps the page's texts, cut to ui.URL_TEXT_LIMIT characters, and says so."""

from components.ui import URL_TEXT_LIMIT
from tests.app.conftest import app, messages, no_exceptions, opened

NOTE = f"The page link keeps only the first {URL_TEXT_LIMIT:,} characters of the text."


def _param(at, name: str) -> str:
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def _long(n: int) -> str:
    """A text of `n` characters that is only a few tokens long (WordPiece reads a word of over 100 characters as
    one [UNK]), so the pages stay fast: these tests are about characters in the URL."""
    words = [chr(ord("a") + i % 26) * 120 for i in range(n // 121 + 1)]
    return " ".join(words)[:n]


def test_long_text_is_cut_in_the_link_with_a_note():
    # Bug: the whole text written into the URL (links that proxies and browsers refuse), a cut at the wrong
    # length, or a silent cut that makes a shared link show a different text.
    at = opened("attention", {"text": "short"})
    assert _param(at, "text") == "short" and NOTE not in _captions(at)
    text = _long(URL_TEXT_LIMIT + 300)
    at.text_area(key="text").set_value(text).run()
    no_exceptions(at)
    assert _param(at, "text") == text[:URL_TEXT_LIMIT]
    assert NOTE in _captions(at)


def test_masks_page_link_holds_the_text_it_uses():
    # Bug: the link holding more (or less) than the page uses. The masks page itself reads only the first
    # 2,000 characters and says so, so its link holds exactly those.
    at = app("masks", {"text": "short", "decoder": "no-such-org/no-such-decoder"})  # offline: no decoder run
    at.run()
    text = _long(max(URL_TEXT_LIMIT, 2_000) + 300)
    at.text_area(key="mask_text").set_value(text).run()
    no_exceptions(at)
    used = min(URL_TEXT_LIMIT, 2_000)
    assert _param(at, "text") == text[:used]
    assert "only the first 2,000 are used" in messages(at) or NOTE in _captions(at)


def test_text_at_the_limit_is_kept_whole():
    # Bug: an off-by-one that cuts or warns about a text exactly URL_TEXT_LIMIT long.
    text = _long(URL_TEXT_LIMIT)
    at = opened("attention", {"text": "short"})
    at.text_area(key="text").set_value(text).run()
    no_exceptions(at)
    assert _param(at, "text") == text and NOTE not in _captions(at)


def test_long_second_sentence_is_cut_too():
    # Bug: only the first text guarded, the sentence pair written whole.
    pair = _long(URL_TEXT_LIMIT + 50)
    at = opened("attention", {"text": "The bank was closed."})
    at.text_input(key="pair").set_value(pair).run()
    no_exceptions(at)
    assert _param(at, "pair") == pair[:URL_TEXT_LIMIT] and _param(at, "text") == "The bank was closed."
    assert NOTE in _captions(at)
