"""Fuzz the image encoders page (/vision), its "why" views included: hostile uploads on a tiny classifier (top 5
and relevance overlay), hostile captions in the CLIP section (the words that made a match), and the patch cap."""

from __future__ import annotations

import pytest

from encoderscope import settings
from tests import vision_fixtures as vf
from tests.app.conftest import app, array, figures
from tests.fuzz import corpus
from tests.fuzz.conftest import assert_survived
from tests.fuzz.test_fuzz_pages import IMAGE_MESSAGES

SMALLER_THAN_A_PATCH = "smaller than one 8×8 patch"
VISION_MESSAGES = {
    **IMAGE_MESSAGES,
    "bomb.png": "too large to decode safely|= 144.0 MP; the limit is",  # refused before decoding, either way
    "1x1.png": SMALLER_THAN_A_PATCH,
    "7x5.png": SMALLER_THAN_A_PATCH,
    "wide.png": SMALLER_THAN_A_PATCH,
}
CAPTIONS = [corpus.wire(t) for t in corpus.INJECTIONS[:6] + corpus.UNICODE[:6]] + ["", "word " * 400]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_vision")
    return {
        "dir": str(root),
        "classifier": str(vf.tiny_vit(root / "vit_cls", classifier=True)),
        "clip": str(vf.tiny_clip(root / "clip")),
    }


@pytest.fixture(autouse=True)
def local(models):
    settings.reload({"ENCODERSCOPE_MODELS_DIR": models["dir"]})
    yield
    settings.reload()


def _titles(at) -> list[str]:
    return [((f["layout"].get("title") or {}).get("text") or "") for f in figures(at)]


def _why_drawn(at) -> bool:
    return any(t.startswith("Why") for t in _titles(at)) and any(t.startswith("Top 3") for t in _titles(at))


@pytest.mark.parametrize("name,data", corpus.image_files(), ids=lambda v: v if isinstance(v, str) else "")
def test_uploads_on_a_classifier(models, name, data):
    """Each upload shows its attention, top classes and relevance overlay, or its own message."""
    at = app("vision", {"model": models["classifier"]})
    at.run()
    at.radio(key="v_image_source").set_value("Upload").run()
    at.file_uploader(key="v_image_upload").set_value((name, data, "image/png")).run()
    assert_survived(at, expect=VISION_MESSAGES.get(name), result=_why_drawn)


@pytest.mark.parametrize("caption", CAPTIONS, ids=lambda t: f"len{len(t)}")
def test_captions_explained(models, caption):
    """A hostile caption is scored and explained word by word (its tokens escaped in the bars), or refused."""
    at = app("vision", {"section": "clip", "clip": models["clip"]})
    at.run()
    at.text_area(key="c_labels").set_value(caption[:30_000]).run()
    expect = "Add at least one caption" if corpus.blank(caption) else None
    if max(map(len, caption.splitlines() or [""])) > 1_000:
        expect = "the limit is 1000"
    assert_survived(
        at,
        expect=expect,
        result=lambda at: "Words that made this match" in _titles(at),
    )


@pytest.mark.parametrize("public, limit", [(False, 1024), (True, 576)])
def test_patch_cap_on_a_panorama(models, public, limit):
    """A 150:1 panorama (4 × 600 patches uncapped) is downscaled to the server's patch limit, public mode's lower
    default included, and the relevance overlay follows the same grid."""
    env = {"ENCODERSCOPE_MODELS_DIR": models["dir"]}
    if public:  # public mode's own limits, with this server's folder allowed so the tiny classifier loads
        env.update({"ENCODERSCOPE_PUBLIC": "1", "ENCODERSCOPE_ALLOW_LOCAL_PATHS": "1"})
    settings.reload(env)
    at = app("vision", {"model": models["classifier"]})
    at.run()
    at.radio(key="v_image_source").set_value("Upload").run()
    panorama = vf.encoded(vf.photo(4800, 32))
    at.file_uploader(key="v_image_upload").set_value(("pano.png", panorama, "image/png")).run()
    assert_survived(at, result=_why_drawn)
    assert f"limit of {limit} patches" in " ".join(t.value for t in at.text)
    why = next(f for f in figures(at) if ((f["layout"].get("title") or {}).get("text") or "").startswith("Why"))
    heat = next(t for t in why["data"] if t["type"] == "heatmap")
    rows, cols = array(heat["z"]).shape
    assert limit // 2 < rows * cols <= limit and cols > rows
