"""Hostile inputs for the fuzz suite, grouped by kind. Deterministic: the same lists on every run."""

from __future__ import annotations

import random

_rng = random.Random(1234)

INJECTIONS = [
    "<script>window.__xss=1</script>",
    "<img src=x onerror=window.__xss=1>",
    "<svg/onload=window.__xss=1>",
    "javascript:alert(1)",
    "[click](javascript:alert(1))",
    "![img](http://127.0.0.1:1/x.png)",
    "**bold** _it_ `code` # heading",
    ":red[coloured] :material/home: :smile:",
    "$$\\frac{1}{0}$$",
    "<iframe src=//evil></iframe>",
    "'; DROP TABLE users; --",
    "{{7*7}} ${7*7} %s %n",
    "\"><b>x</b>",
    "&lt;escaped&gt; &amp;",
]

UNICODE = [
    "😀🎉👩‍👩‍👧‍👦 emoji",
    "漢字とかなカナ 한국어",
    "שלום עולם مرحبا بالعالم",  # right-to-left
    "\u202eevil\u202c override",
    "e\u0301\u0301\u0301\u0301 z̷̛̖̈́a̸̡̛͓l̴̢̈g̶̨̛o̵͚͐",
    "zero\u200b\u200c\u200dwidth\ufeff",
    "lone \ud800 surrogate",
    "nul\x00byte",
    "bell\x07 esc\x1b[31m tab\t newline\n cr\r",
    "\uffff\ufffe noncharacters",
    "𝕞𝕒𝕥𝕙 𝒔𝒄𝒓𝒊𝒑𝒕",
    "\u0000" * 20,
]

SIZES = ["", " ", "   \n\t\r  ", "a", "a" * 1_000_000, "word " * 2_000, "\n" * 5_000, ("x" * 50 + " ") * 3_000]


def wire(text: str) -> str:
    """What a browser can actually send: lone surrogates cannot be UTF-8 encoded, so they arrive replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")


def texts() -> list[str]:
    """≥ 60 hostile texts: injections, unicode edge cases, sizes and random junk."""
    junk = ["".join(chr(_rng.randrange(0x20, 0x3000)) for _ in range(_rng.randrange(1, 400))) for _ in range(20)]
    mixed = [f"{a} {b}" for a, b in zip(INJECTIONS, UNICODE, strict=False)]
    return INJECTIONS + UNICODE + SIZES + junk + mixed


def model_ids() -> list[str]:
    """Model ids and paths a hostile user might type."""
    return [
        "../../etc/passwd", "/etc/passwd", "/etc", "~", "~/.ssh", "/proc/self/environ", "..", ".", "./",
        "C:\\Windows\\system32", "\\\\server\\share", "file:///etc/passwd", "http://127.0.0.1:1/model",
        "bert-base-uncased/../../x", "a" * 500, "", " ", "\x00", "org/\x00name", "<script>x</script>",
        "no-such-org/no-such-model", "gpt2", "bert base", "org/name/extra", "org//name", "-rf", "😀/😀",
        "sentence-transformers/all-MiniLM-L6-v2", "%2e%2e%2f%2e%2e%2fetc",
    ]


def url_numbers() -> list[tuple[str, str]]:
    """(layer, head) pairs for the query string."""
    values = ["-1", "-4", "99", "1000000000000000000000", "1e9", "NaN", "inf", "", " ", "0x10", "3.5",
              "mean", "<script>", "0", "5", "11"]
    return [(a, b) for a in values for b in values[::3]]
