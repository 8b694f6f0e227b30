"""Fuzz the masks, embeddings and VAE pages with hostile text, CSV, .npy, images and URL parameters."""

import pytest

from tests.app.conftest import app
from tests.fuzz import corpus
from tests.fuzz.conftest import assert_survived

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
    assert_survived(at, expect_message=not text.strip())


@pytest.mark.parametrize("prefix", ["-1", "999999", "abc", "", "3"])
@pytest.mark.parametrize("word", ["", "<b>x</b>", "bank"])
def test_masks_url_and_probe_word(prefix, word):
    at = app("masks", {"text": "The bank was steep.", "prefix": prefix})
    at.run()
    at.text_input(key="probe_word").set_value(word).run()
    assert_survived(at)


@pytest.mark.parametrize("name,data", corpus.csv_files(), ids=lambda v: v if isinstance(v, str) else "")
def test_embeddings_csv(name, data):
    at = _embeddings("CSV upload")
    at.file_uploader(key="csv_upload").set_value((name, data, "text/csv")).run()
    assert_survived(at)


@pytest.mark.parametrize("name,data", corpus.npy_files(), ids=lambda v: v if isinstance(v, str) else "")
def test_embeddings_vectors(name, data):
    at = _embeddings("Precomputed embeddings")
    at.file_uploader(key="vec_upload").set_value((name, data, "application/octet-stream")).run()
    assert_survived(at)
    if "pickle" in name:
        assert "pickle" in " ".join(e.value for e in at.error)


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: f"len{len(t)}")
def test_embeddings_typed(text):
    at = _embeddings("Your sentences")
    at.text_area(key="sentences").set_value(text[:200_000]).run()
    assert_survived(at)


@pytest.mark.parametrize("uploader", ["image", "second image"])
@pytest.mark.parametrize("name,data", corpus.image_files(), ids=lambda v: v if isinstance(v, str) else "")
def test_vae_images(name, data, uploader, taef2_dir):
    """The main upload, and the playground's second upload (the interpolation partner)."""
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_MODELS_DIR": str(taef2_dir.parent)})
    try:
        at = app("vae")
        at.session_state["size"] = 256
        at.run()
        if uploader == "image":
            at.radio(key="image_source").set_value("Upload").run()
            at.file_uploader(key="image_upload").set_value((name, data, "image/png")).run()
        else:
            at.radio(key="pg_partner").set_value("upload").run()
            at.file_uploader(key="pg_upload").set_value((name, data, "image/png")).run()
            at.slider(key="pg_t").set_value(0.5).run()
        assert_survived(at)
    finally:
        settings.reload()


@pytest.mark.parametrize("public", [False, True])
@pytest.mark.parametrize("ref", ["../../etc/passwd", "/etc", "~/.ssh", "no-such/vae", "<script>", "x" * 600])
def test_vae_ids(ref, public):
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_PUBLIC": "1"} if public else {})
    try:
        at = app("vae", {"vae": ref})
        at.run()
        if not public:
            at.selectbox(key="vae_select").set_value("Other (hub id, folder or .safetensors)…").run()
            at.text_input(key="vae_custom").set_value(ref[:500]).run()
            assert at.error, "a bad VAE reference must be explained"
        assert_survived(at)
    finally:
        settings.reload()
