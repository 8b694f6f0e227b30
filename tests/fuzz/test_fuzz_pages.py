"""Fuzz the masks, embeddings and VAE pages with hostile text, CSV, .npy, images and URL parameters."""

import re

import pytest

from tests.app.conftest import app
from tests.fuzz import corpus
from tests.fuzz.conftest import assert_survived, boxes, shows_result, url_notice

TEXTS = [corpus.wire(t) for t in corpus.INJECTIONS[:6] + corpus.UNICODE + corpus.SIZES[:5]]


def _embeddings(source: str):
    at = app("embeddings")
    at.session_state["method"] = "pca"  # fuzzing the inputs, not UMAP: keep each case fast
    at.run()
    at.radio(key="source").set_value(source).run()
    return at


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: f"len{len(t)}")
def test_masks_text(text):
    at = app("masks", {"text": text[:3000]})
    at.run()
    assert_survived(at, expect="Type a sentence above" if corpus.blank(text) else None)


PROBE_WORD_MESSAGES = {"": "Type a target word", "<b>x</b>": "does not appear in both sentences", "bank": None}


@pytest.mark.parametrize("prefix", ["-1", "999999", "abc", "", "3"])
@pytest.mark.parametrize("word", list(PROBE_WORD_MESSAGES))
def test_masks_url_and_probe_word(prefix, word):
    at = app("masks", {"text": "The bank was steep.", "prefix": prefix})  # 7 tokens: a prefix of 0..7
    at.run()
    assert_survived(at, expect=url_notice("prefix", prefix, 7))
    at.text_input(key="probe_word").set_value(word).run()
    assert_survived(at, expect=PROBE_WORD_MESSAGES[word])


# The embeddings page's other views follow a word ("bank" by default) and say when the corpus lacks it, or
# explain a sentence and its neighbour: their own messages, not a failure of the projection under test.
OTHER_TAB = "appears in none of the sentences|Token embeddings need a model|The corpus has one sentence"


def _other_views(at) -> None:
    """The word and "Why are these close?" views on the same corpus, when the page drew its map (only the view
    shown runs, so each is visited): each ends with a chart or its own message."""
    if not [w for w in at.segmented_control if w.key == "emb_view"]:
        return
    for view in ("One word in context", "Why are these close?"):
        at.segmented_control(key="emb_view").set_value(view).run()
        assert_survived(at, allow=OTHER_TAB, result=lambda at: shows_result(at) or bool(boxes(at)))
EMPTY_FILE, NO_ROWS, BINARY = "The file is empty", "The CSV has no data rows", "does not look like a CSV file"
CSV_MESSAGES = {
    "empty.csv": EMPTY_FILE,
    "blank.csv": "The CSV has no data rows",
    "header-only.csv": NO_ROWS,
    "binary.csv": BINARY,
    "nul.csv": BINARY,
    "deep-quotes.csv": NO_ROWS,  # one unclosed quote swallows the rest of the file
    "unclosed.csv": NO_ROWS,
    "utf16.csv": BINARY,
    "json.csv": NO_ROWS,  # one line: a header without rows
    "text-12.csv": NO_ROWS,  # '"><b>x</b>' opens a quote that never closes
    **{f"random-{i}.csv": BINARY for i in range(10)},
}
@pytest.mark.parametrize("name,data", corpus.csv_files(), ids=lambda v: v if isinstance(v, str) else "")
def test_embeddings_csv(name, data):
    """Each hostile CSV is either projected or refused with its own message."""
    at = _embeddings("CSV upload")
    at.file_uploader(key="csv_upload").set_value((name, data, "text/csv")).run()
    assert_survived(at, expect=CSV_MESSAGES.get(name), allow=OTHER_TAB)
    _other_views(at)


SHAPE, DTYPE = r"an \[N, D\] array \(2 dimensions\) is needed", r"a numeric \[N, D\] array is needed"
PICKLE, BAD_VALUES = r"holds Python objects \(a pickle\)", "NaN or infinite"
NPY_MESSAGES = {
    "pickle.npy": PICKLE,
    "pickle2.npy": PICKLE,
    "1d.npy": SHAPE,
    "3d.npy": SHAPE,
    "0d.npy": SHAPE,
    "empty.npy": "it is empty",
    "nan.npy": BAD_VALUES,
    "inf.npy": BAD_VALUES,
    "strings.npy": DTYPE,
    "complex.npy": DTYPE,
    "bool.npy": DTYPE,
    "truncated.npy": "truncated or damaged",
    "garbage.npy": "header is damaged",
    "text.tsv": "non-numeric values",
    "one-row.npy": None,
    "constant.npy": None,
    "ok.tsv": None,
}


def test_every_vectors_file_has_an_expected_answer():
    assert set(NPY_MESSAGES) == {name for name, _ in corpus.npy_files()}


@pytest.mark.parametrize("name,data", corpus.npy_files(), ids=lambda v: v if isinstance(v, str) else "")
def test_embeddings_vectors(name, data):
    at = _embeddings("Precomputed embeddings")
    at.file_uploader(key="vec_upload").set_value((name, data, "application/octet-stream")).run()
    assert_survived(at, expect=NPY_MESSAGES[name], allow=OTHER_TAB)


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: f"len{len(t)}")
def test_embeddings_typed(text):
    at = _embeddings("Your sentences")
    at.text_area(key="sentences").set_value(text[:200_000]).run()
    assert_survived(at, expect="Type one sentence per line" if corpus.blank(text) else None, allow=OTHER_TAB)
    _other_views(at)


NOT_AN_IMAGE = re.escape("This file is not an image format we can read")
IMAGE_MESSAGES = {
    "empty.png": "The file is empty",
    "text.png": NOT_AN_IMAGE,
    "html.png": NOT_AN_IMAGE,
    "truncated.jpg": "damaged or truncated",
    "header-only.png": NOT_AN_IMAGE,
    "bomb.png": "= 144.0 MP; the limit is",  # refused from the header, before decoding
    "random.jpg": NOT_AN_IMAGE,
}
INTERPOLATED = "decoded edited latents (50% towards the second image)"


def _captioned(text: str):
    """A result check: an image whose caption contains `text` (markdown escapes ignored)."""
    return lambda at: any(text in c.replace("\\", "") for element in at.get("image") for c in element.captions)


@pytest.mark.parametrize("uploader", ["image", "second image"])
@pytest.mark.parametrize("name,data", corpus.image_files(), ids=lambda v: v if isinstance(v, str) else "")
def test_vae_images(name, data, uploader, taef2_dir):
    """The main upload, and the playground's second upload (the interpolation partner). Each shows its own
    result (the upload as encoded; the latents decoded half-way towards the upload) or its own message: the
    sample photo's charts, drawn either way for the second upload, do not count."""
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_MODELS_DIR": str(taef2_dir.parent)})
    try:
        at = app("vae")
        at.session_state["size"] = 256
        at.run()
        message = IMAGE_MESSAGES.get(name)
        if uploader == "image":
            at.radio(key="image_source").set_value("Upload").run()
            at.file_uploader(key="image_upload").set_value((name, data, "image/png")).run()
            assert_survived(at, expect=message, result=_captioned(f"{name} as encoded"))
        else:
            at.segmented_control(key="vae_view").set_value("Latent playground").run()  # only the view shown runs
            at.radio(key="pg_partner").set_value("upload").run()
            at.file_uploader(key="pg_upload").set_value((name, data, "image/png")).run()
            at.slider(key="pg_t").set_value(0.5).run()
            second = message and "The second image cannot be used: .*" + message
            assert_survived(at, expect=second, result=_captioned(INTERPOLATED))
    finally:
        settings.reload()


VAE_ID_MESSAGES = {
    "../../etc/passwd": "No VAE at",
    "/etc": "holds no VAE",
    "~/.ssh": "holds no VAE|No VAE at",
    "no-such/vae": "Hugging Face Hub is unreachable",
    "<script>": "is not a valid hub id",
    "x" * 600: "is not a usable path",
}


@pytest.mark.parametrize("public", [False, True])
@pytest.mark.parametrize("ref", list(VAE_ID_MESSAGES), ids=lambda r: r[:20])
def test_vae_ids(ref, public):
    """Typed in the custom box, each reference gets its own message; in public mode a link to it is refused
    with a warning before anything is loaded."""
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_PUBLIC": "1"} if public else {})
    try:
        at = app("vae", {"vae": ref})
        at.run()
        if public:
            assert_survived(at, expect="from the link is not available on this server")
        else:
            at.selectbox(key="vae_select").set_value("Other (hub id, folder or .safetensors)…").run()
            at.text_input(key="vae_custom").set_value(ref[:500]).run()
            assert_survived(at, expect=VAE_ID_MESSAGES[ref])
    finally:
        settings.reload()
