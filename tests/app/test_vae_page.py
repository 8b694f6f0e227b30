"""The image VAE page under AppTest, with the real TAEF2 weights from ../shared/models."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import app, array, figures, messages, no_exceptions, show

VIEW, LATENTS, RECONSTRUCTION, PLAYGROUND = "vae_view", "Latents", "Reconstruction", "Latent playground"


@pytest.fixture(autouse=True)
def models_dir(taef2_dir, monkeypatch):
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_MODELS_DIR": str(taef2_dir.parent)})
    yield
    settings.reload()


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


@pytest.fixture(scope="module")
def page(taef2_dir):
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_MODELS_DIR": str(taef2_dir.parent)})
    at = app("vae")
    at.run()
    return at


def test_sample_round_trip(page):
    no_exceptions(page)
    m = _metrics(page)
    assert m["Latent shape"] == "32×42×64" and m["Image"] == "512×336"
    assert "taef2" in page.selectbox(key="vae_select").value
    grid = figures(page)[0]
    z = array(grid["data"][0]["z"])
    assert grid["data"][0]["zmid"] == 0 and grid["data"][0]["zmin"] == -grid["data"][0]["zmax"]
    assert len(grid["layout"]["annotations"]) == 32  # one label per channel
    assert np.isfinite(z).sum() == 32 * 21 * 32  # each 42×64 channel area-averaged to 21×32 cells (payload bound)
    show(page, VIEW, RECONSTRUCTION)
    assert float(_metrics(page)["PSNR"].split()[0]) > 22
    assert any(d["type"] == "image" for f in figures(page) for d in f["data"])  # synced comparison
    show(page, VIEW, LATENTS)


def test_square_fit_gives_sd_shape(page):
    page.radio(key="fit").set_value("square").run()
    no_exceptions(page)
    assert _metrics(page)["Latent shape"] == "32×64×64"


def test_playground_edits_decode(page):
    show(page, VIEW, PLAYGROUND)
    captions = " ".join(c for image in page.get("image") for c in image.captions)
    assert "unedited" in captions  # no edit yet: the decoder does not run again
    page.selectbox(key="pg_op").set_value("shift").run()
    page.slider(key="pg_amount_shift").set_value(1.5).run()
    no_exceptions(page)
    assert "channel 0: shift 1.5)" in " ".join(c for image in page.get("image") for c in image.captions)
    page.selectbox(key="pg_op").set_value("zero")
    page.slider(key="pg_sigma").set_value(0.5)
    page.slider(key="pg_t").set_value(0.5).run()
    no_exceptions(page)
    captions = " ".join(c for image in page.get("image") for c in image.captions)
    assert "zero, noise σ 0.5, 50% towards the other photo" in captions


def test_upload(page):
    show(page, VIEW, LATENTS)
    page.radio(key="image_source").set_value("Upload").run()
    image = Image.fromarray((np.random.default_rng(0).random((100, 130, 3)) * 255).astype(np.uint8))
    page.file_uploader(key="image_upload").set_value(("noise.webp", _png(image, "WEBP"), "image/webp")).run()
    no_exceptions(page)
    assert _metrics(page)["Latent shape"].startswith("32×")


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"definitely not an image", "not an image"),
        (b"", "empty"),
    ],
)
def test_bad_uploads(data, expected):
    at = app("vae")
    at.run()
    at.radio(key="image_source").set_value("Upload").run()
    at.file_uploader(key="image_upload").set_value(("x.png", data, "image/png")).run()
    no_exceptions(at)
    assert expected in messages(at)


def test_truncated_jpeg_and_bomb():
    from sklearn.datasets import load_sample_image

    jpeg = _png(Image.fromarray(load_sample_image("flower.jpg")), "JPEG")
    at = app("vae")
    at.run()
    at.radio(key="image_source").set_value("Upload").run()
    at.file_uploader(key="image_upload").set_value(("t.jpg", jpeg[: len(jpeg) // 2], "image/jpeg")).run()
    no_exceptions(at)
    assert "truncated" in messages(at)
    bomb = _png(Image.new("L", (10_000, 10_000)))
    at.file_uploader(key="image_upload").set_value(("bomb.png", bomb, "image/png")).run()
    no_exceptions(at)
    assert "limit" in messages(at)


def test_tiny_images():
    at = app("vae")
    at.run()
    at.radio(key="image_source").set_value("Upload").run()
    for size, shape in (((1, 1), "32×64×64"), ((7, 5), "32×45×64")):  # upscaled to the working size
        at.file_uploader(key="image_upload").set_value(("tiny.png", _png(Image.new("RGB", size, "red")), "image/png"))
        at.run()
        no_exceptions(at)
        assert _metrics(at)["Latent shape"] == shape


def test_unknown_hub_vae_offline():
    at = app("vae", {"vae": "no-such-org/no-such-vae"})
    at.run()
    at.selectbox(key="vae_select").set_value("Other (hub id, folder or .safetensors)…").run()
    at.text_input(key="vae_custom").set_value("no-such-org/no-such-vae").run()
    no_exceptions(at)
    assert "unreachable" in messages(at)


def test_upload_over_the_size_limit():
    from encoderscope import settings

    at = app("vae")
    at.run()
    settings.reload({"ENCODERSCOPE_MODELS_DIR": settings.get().models_dir, "ENCODERSCOPE_MAX_UPLOAD_MB": "1"})
    at.radio(key="image_source").set_value("Upload").run()
    noise = Image.fromarray((np.random.default_rng(1).random((800, 800, 3)) * 255).astype(np.uint8))
    data = _png(noise)
    assert len(data) > 1_000_000
    at.file_uploader(key="image_upload").set_value(("big.png", data, "image/png")).run()
    no_exceptions(at)
    assert "the limit on this server is 1 MB" in messages(at)


@pytest.mark.parametrize("broken", ["missing_decoder", "not_a_state_dict"])
def test_broken_vae_folder(broken, taef2_dir, tmp_path):
    import shutil

    import torch

    shutil.copy(taef2_dir / "taef2_encoder.pth", tmp_path / "x_encoder.pth")
    if broken == "not_a_state_dict":
        torch.save(["not", "weights"], tmp_path / "x_decoder.pth")
    at = app("vae")
    at.run()
    at.selectbox(key="vae_select").set_value("Other (hub id, folder or .safetensors)…").run()
    at.text_input(key="vae_custom").set_value(str(tmp_path)).run()
    no_exceptions(at)
    assert ("pair" if broken == "missing_decoder" else "state dict") in messages(at)


def _captions(at) -> str:
    return " ".join(c for image in at.get("image") for c in image.captions)


def _playground():
    """The page (the sample photo) with its playground view shown."""
    at = app("vae")
    at.run()
    return show(at, VIEW, PLAYGROUND)


def test_interpolate_towards_a_second_upload_of_another_shape():
    """The partner is fitted to the first image's pixel size, so any second image interpolates."""
    at = _playground()
    at.radio(key="pg_partner").set_value("upload").run()
    portrait = Image.fromarray((np.random.default_rng(2).random((300, 100, 3)) * 255).astype(np.uint8))
    at.file_uploader(key="pg_upload").set_value(("portrait.png", _png(portrait), "image/png")).run()
    no_exceptions(at)
    assert "portrait.png, fitted to 512×336" in _captions(at).replace("\\", "")
    at.slider(key="pg_t").set_value(0.5).run()
    no_exceptions(at)
    assert not at.error, messages(at)
    assert "latents (50% towards the second image)" in _captions(at)  # scale 1 is no edit: not listed


def test_interpolate_an_upload_towards_the_other_sample():
    """Before: shapes differed (upload 130×100 vs a 640×427 sample) and interpolation was refused."""
    at = _playground()
    at.radio(key="image_source").set_value("Upload").run()
    image = Image.fromarray((np.random.default_rng(3).random((100, 130, 3)) * 255).astype(np.uint8))
    at.file_uploader(key="image_upload").set_value(("odd.png", _png(image), "image/png")).run()
    at.slider(key="pg_t").set_value(0.25).run()
    no_exceptions(at)
    assert "same shape" not in messages(at) and not at.error
    assert "25% towards the other photo" in _captions(at)


@pytest.mark.parametrize("data,expected", [(b"not an image at all", "not an image"), (b"", "empty")])
def test_bad_second_upload(data, expected):
    at = _playground()
    at.radio(key="pg_partner").set_value("upload").run()
    at.file_uploader(key="pg_upload").set_value(("bad.png", data, "image/png")).run()
    no_exceptions(at)
    assert "The second image cannot be used" in messages(at) and expected in messages(at)
    at.slider(key="pg_t").set_value(0.5).run()
    no_exceptions(at)
    assert "towards" not in _captions(at)  # nothing to interpolate with: the edit is not claimed


@pytest.mark.parametrize("wanted", ["/etc", "/no/such/folder", "someone/their-vae"])
def test_link_to_a_vae_the_public_server_does_not_offer(taef2_dir, wanted):
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_PUBLIC": "1", "ENCODERSCOPE_MODELS_DIR": str(taef2_dir.parent)})
    at = app("vae", {"vae": wanted})
    at.run()
    no_exceptions(at)
    warning = " ".join(w.value for w in at.warning).replace("\\", "")
    assert f"The VAE {wanted!r} from the link is not available on this server" in warning
    assert "Only the listed VAEs" in warning and "taef2" in warning
    assert at.selectbox(key="vae_select").value == str(taef2_dir)
    assert _metrics(at)["Latent shape"] == "32×42×64"  # the page still works with the listed VAE


def test_link_to_a_listed_vae_in_public_mode(taef2_dir):
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_PUBLIC": "1", "ENCODERSCOPE_MODELS_DIR": str(taef2_dir.parent)})
    at = app("vae", {"vae": str(taef2_dir)})
    at.run()
    no_exceptions(at)
    assert not at.warning and at.selectbox(key="vae_select").value == str(taef2_dir)


def test_link_to_a_custom_vae_fills_the_free_text_box():
    at = app("vae", {"vae": "no-such-org/no-such-vae"})
    at.run()
    no_exceptions(at)
    assert at.selectbox(key="vae_select").value.startswith("Other")
    assert at.text_input(key="vae_custom").value == "no-such-org/no-such-vae"
    assert "unreachable" in messages(at)  # offline in tests: the loader explains


def test_several_taesd_pairs_are_each_selectable(tmp_path):
    import torch

    from encoderscope import settings
    from encoderscope.vae import taesd

    folder = tmp_path / "vae_approx"
    folder.mkdir()
    torch.manual_seed(0)
    for prefix, channels in (("taesd", 4), ("taesd3", 16)):
        torch.save(taesd.encoder(channels).state_dict(), folder / f"{prefix}_encoder.pth")
        torch.save(taesd.decoder(channels).state_dict(), folder / f"{prefix}_decoder.pth")
    settings.reload({"ENCODERSCOPE_MODELS_DIR": str(tmp_path)})
    at = app("vae")
    at.run()
    box = at.selectbox(key="vae_select")
    assert box.options[:2] == [
        f"taesd3 · {folder / 'taesd3_encoder.pth'} (local)",
        f"taesd · {folder / 'taesd_encoder.pth'} (local)",
    ]
    assert _metrics(at)["Latent shape"] == "16×42×64"
    box.set_value(str(folder / "taesd_encoder.pth")).run()
    no_exceptions(at)
    assert _metrics(at)["Latent shape"] == "4×42×64"


def test_the_hidden_views_compute_nothing(jobs):
    # Bug caught (issue 24): tabs ran all three views on every run, so a new image (an upload: the load test's heavy
    # action) also drew the comparison and re-ran the playground, whose edits decoded the new latents for nobody.
    at = _playground()
    at.slider(key="pg_sigma").set_value(0.5).run()
    no_exceptions(at)
    assert "VAE decode" in jobs() and "noise σ 0.5" in _captions(at)
    show(at, VIEW, LATENTS)
    jobs()
    at.select_slider(key="size").set_value(256)
    at.radio(key="fit").set_value("pad").run()  # a round trip no other test computes
    no_exceptions(at)
    ran = jobs()
    assert "VAE round trip" in ran and "VAE decode" not in ran, ran
    assert "decoded" not in _captions(at)  # the playground's pictures are gone, not hidden
    assert not any(d["type"] == "image" for f in figures(at) for d in f["data"])  # so is the comparison
    assert _metrics(at)["Image"].startswith("256×") and "PSNR" not in _metrics(at)  # the new latents, alone
    show(at, VIEW, PLAYGROUND)  # the edit kept its value while hidden: the new latents are decoded now
    assert at.slider(key="pg_sigma").value == 0.5
    assert "VAE decode" in jobs() and "noise σ 0.5" in _captions(at)
