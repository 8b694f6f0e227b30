"""Hostile inputs for the fuzz suite, grouped by kind. Deterministic: the same lists on every run."""

from __future__ import annotations

import random
import unicodedata


def _rng(name: str) -> random.Random:
    """A generator seeded per list, so each list is the same whichever lists a run builds first."""
    return random.Random(f"encoderscope-fuzz-{name}")


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


def blank(text: str) -> bool:
    """Whether nothing is left of `text` (as sent by a browser) once control characters, which the pages drop,
    and surrounding whitespace are removed."""
    return not "".join(c for c in wire(text) if c in "\n\t" or unicodedata.category(c) != "Cc").strip()


def texts() -> list[str]:
    """≥ 60 hostile texts: injections, unicode edge cases, sizes and random junk."""
    rng = _rng("texts")
    junk = ["".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(1, 400))) for _ in range(20)]
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


def csv_files() -> list[tuple[str, bytes]]:
    """(name, bytes) CSV uploads: bombs, junk, encodings, quoting."""
    files = [
        ("empty.csv", b""),
        ("blank.csv", b"\n\n\n"),
        ("header-only.csv", b"text\n"),
        ("binary.csv", bytes(range(256)) * 40),
        ("nul.csv", b"text\nhello\x00world\n"),
        ("huge-field.csv", b'text\n"' + b"x" * 3_000_000 + b'"\n'),
        ("deep-quotes.csv", b"text\n" + b'"' * 10_001 + b"\n"),
        ("unclosed.csv", b'text\n"never closed\nmore\n'),
        ("many-columns.csv", (",".join(f"c{i}" for i in range(5000)) + "\n" + ",".join("v" * 5000) + "\n").encode()),
        ("ragged.csv", b"a,b\n1\n1,2,3,4\n,\n"),
        ("latin1.csv", "text\nna\xefve caf\xe9\n".encode("latin-1")),
        ("utf16.csv", "text\nhello\n".encode("utf-16")),
        ("bom.csv", "\ufefftext;label\nbonjour;fr\n".encode()),
        ("formula.csv", b"text\n=HYPERLINK(\"http://x\")\n+1+1\n@SUM(A1)\n"),
        ("html.csv", b"text\n<script>window.__xss=1</script>\n<img src=x onerror=alert(1)>\n"),
        ("json.csv", b'{"not": "a csv"}'),
        ("tabs.csv", b"text\tlabel\nhello\tgreeting\n"),
        ("only-nan.csv", b"text,label\nNaN,NaN\nnull,\n"),
        ("newlines.csv", b'text\n"multi\nline\ncell"\n'),
        ("rows.csv", b"text\n" + b"row\n" * 120_000),
        ("collide-stripped.csv", b"text,text \nx,y\n"),  # the same name once whitespace is stripped
        ("collide-exact.csv", b"text,text,label,label\nx,y,a,b\n"),
        ("collide-generated.csv", b"text,text,text (2)\nx,y,z\n"),
        ("empty-names.csv", b",,\nx,y,z\n"),
        ("empty-and-generated.csv", b" ,column 1\nx,y\n"),
    ]
    rng = _rng("csv")
    files += [(f"random-{i}.csv", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))) for i in range(10)]
    files += [(f"text-{i}.csv", ("text\n" + wire(t).replace("\x00", "") + "\n").encode("utf-8", "replace"))
              for i, t in enumerate(INJECTIONS + UNICODE[:6])]
    return files


def npy_files() -> list[tuple[str, bytes]]:
    """(name, bytes) vector uploads, including pickles that must be refused."""
    import io

    import numpy as np

    def npy(array, allow_pickle=False) -> bytes:
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=allow_pickle)
        return buf.getvalue()

    return [
        ("pickle.npy", npy(np.array([{"evil": 1}], dtype=object), allow_pickle=True)),
        ("pickle2.npy", npy(np.array([[object()]], dtype=object), allow_pickle=True)),
        ("1d.npy", npy(np.ones(10))),
        ("3d.npy", npy(np.ones((2, 3, 4)))),
        ("0d.npy", npy(np.float32(1))),
        ("empty.npy", npy(np.zeros((0, 5)))),
        ("nan.npy", npy(np.array([[np.nan, 0.0], [1, 2], [3, 4], [5, 6]]))),
        ("inf.npy", npy(np.array([[np.inf, 0.0], [1, 2]]))),
        ("strings.npy", npy(np.array([["a", "b"], ["c", "d"]]))),
        ("complex.npy", npy(np.ones((3, 3), dtype=complex))),
        ("bool.npy", npy(np.ones((4, 2), dtype=bool))),
        ("one-row.npy", npy(np.ones((1, 8), dtype=np.float32))),
        ("constant.npy", npy(np.ones((20, 8), dtype=np.float32))),
        ("truncated.npy", npy(np.ones((50, 50)))[:300]),
        ("garbage.npy", b"\x93NUMPY\x01\x00garbage"),
        ("text.tsv", b"0.1\t0.2\nx\ty\n"),
        ("ok.tsv", b"0.1\t0.2\n0.3\t0.4\n0.5\t0.1\n0.9\t0.2\n"),
    ]


def image_files() -> list[tuple[str, bytes]]:
    """(name, bytes) image uploads: junk, truncation, bombs, odd modes and sizes."""
    import io

    from PIL import Image

    def save(image, fmt, **kw) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format=fmt, **kw)
        return buf.getvalue()

    rgb = Image.new("RGB", (64, 48), (200, 100, 50))
    jpeg = save(rgb, "JPEG")
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    pal = Image.new("P", (16, 16))
    return [
        ("empty.png", b""),
        ("text.png", b"hello, not an image"),
        ("html.png", b"<svg onload=alert(1)></svg>"),
        ("truncated.jpg", jpeg[: len(jpeg) // 2]),
        ("header-only.png", b"\x89PNG\r\n\x1a\n"),
        ("bomb.png", save(Image.new("1", (12_000, 12_000)), "PNG")),
        ("1x1.png", save(Image.new("RGB", (1, 1)), "PNG")),
        ("7x5.png", save(Image.new("RGB", (7, 5)), "PNG")),
        ("wide.png", save(Image.new("RGB", (4000, 3)), "PNG")),
        ("animated.gif", gif.getvalue()),
        ("cmyk.jpg", save(rgb.convert("CMYK"), "JPEG")),
        ("grey16.png", save(Image.new("I;16", (32, 32)), "PNG")),
        ("palette-alpha.png", save(pal, "PNG", transparency=0)),
        ("rgba.webp", save(Image.new("RGBA", (32, 32), (0, 0, 0, 0)), "WEBP")),
        ("la.png", save(Image.new("LA", (32, 32)), "PNG")),
        ("tiny.bmp", save(Image.new("RGB", (9, 9)), "BMP")),
        ("float.tif", save(Image.new("F", (16, 16)), "TIFF")),
        ("random.jpg", bytes(_rng("image").randrange(256) for _ in range(4000))),
    ]
