"""Image decoding and preprocessing for every kind of upload the VAE page accepts."""

import io

import numpy as np
import pytest
from PIL import Image

from encoderscope import images
from encoderscope.images import ImageError


def _bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo():
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image("flower.jpg"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_formats(photo, fmt):
    image, _ = images.open_image(_bytes(photo, fmt))
    assert image.mode == "RGB" and image.size == photo.size


def test_exif_orientation(photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image, notes = images.open_image(_bytes(photo, "JPEG", exif=exif))
    assert image.size == (photo.height, photo.width) and any("EXIF" in n for n in notes)


def test_alpha_over_white():
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))  # fully transparent red
    image, notes = images.open_image(_bytes(rgba, "PNG"))
    assert image.getpixel((0, 0)) == (255, 255, 255) and any("white" in n for n in notes)


def test_palette_with_transparency():
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.info["transparency"] = 0
    image, _ = images.open_image(_bytes(pal, "PNG", transparency=0))
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_greyscale():
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    image, notes = images.open_image(_bytes(Image.fromarray(arr), "PNG"))  # saved as 16-bit PNG
    px = np.asarray(image)
    assert image.mode == "RGB" and px.max() == 255 and px.min() == 0 and any("bit" in n for n in notes)


def test_cmyk_and_greyscale(photo):
    image, notes = images.open_image(_bytes(photo.convert("CMYK"), "JPEG"))
    assert image.mode == "RGB" and any("CMYK" in n for n in notes)
    image, notes = images.open_image(_bytes(photo.convert("L"), "PNG"))
    assert image.mode == "RGB" and any("Greyscale" in n for n in notes)


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    image, notes = images.open_image(buf.getvalue())
    assert image.getpixel((0, 0))[0] > 200 and any("first frame" in n for n in notes)


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "damaged|not an image"),
    ],
)
def test_bad_files(data, match):
    with pytest.raises(ImageError, match=match):
        images.open_image(data)


def test_truncated_jpeg(photo):
    data = _bytes(photo, "JPEG")
    with pytest.raises(ImageError, match="damaged or truncated"):
        images.open_image(data[: len(data) // 2])


def test_decompression_bomb_refused_before_decoding():
    # A 10000 x 10000 PNG header (100 MP) compresses to almost nothing.
    bomb = _bytes(Image.new("L", (10_000, 10_000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(ImageError, match="limit"):
        images.open_image(bomb, max_pixels=40_000_000)


@pytest.mark.parametrize(
    "size_in,fit,expected",
    [
        ((1, 1), "crop", (8, 8)),
        ((7, 5), "crop", (8, 8)),
        ((7, 5), "pad", (256, 184)),
        ((640, 427), "crop", (512, 336)),
        ((640, 427), "pad", (512, 344)),
        ((640, 427), "square", (512, 512)),
    ],
)
def test_prepare_sizes(size_in, fit, expected):
    size = 256 if size_in == (7, 5) and fit == "pad" else 512 if size_in[0] > 100 else 8
    out, notes = images.prepare(Image.new("RGB", size_in, (10, 20, 30)), size, fit)
    assert out.size == expected and out.size[0] % 8 == 0 and out.size[1] % 8 == 0


def test_metrics():
    a = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    assert images.psnr(a, a) == float("inf") and images.ssim(a, a) == pytest.approx(1.0)
    assert images.psnr(a, np.clip(a + 0.1, 0, 1)) < 25 and images.ssim(a, 1 - a) < 0.5


def test_rgb_preview_fits_colours():
    lat = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
    target = np.stack([(lat[0] > 0)] * 3, -1).astype(np.float32)
    img = np.kron(target, np.ones((8, 8, 1)))
    preview = images.latent_rgb_preview(lat, img)
    assert preview.shape == (8, 8, 3) and np.corrcoef(preview[..., 0].ravel(), lat[0].ravel())[0, 1] > 0.5


@pytest.mark.parametrize("source", [(640, 427), (100, 300), (7, 5), (512, 336)])
def test_fit_to_matches_any_size_exactly(source):
    image = Image.new("RGBA", source, (10, 200, 30, 128))
    fitted, notes = images.fit_to(image, (512, 336))
    assert fitted.size == (512, 336) and fitted.mode == "RGB"
    assert bool(notes) == (source != (512, 336))
    # already fitted: prepare() keeps it as it is, so its latents have the first image's shape
    for fit in images.FITS[:2]:
        assert images.prepare(fitted, 512, fit)[0].size == (512, 336)


def test_fit_to_crops_the_centre():
    wide = Image.new("RGB", (300, 100), "red")
    wide.paste(Image.new("RGB", (100, 100), "blue"), (100, 0))  # blue in the middle third
    fitted, _ = images.fit_to(wide, (64, 64))
    assert np.asarray(fitted)[32, 32].tolist() == [0, 0, 255]


def test_a_small_cap_does_not_leak_into_other_images():
    # Bug caught: open_image set PIL's global Image.MAX_IMAGE_PIXELS, so one call with a small cap made every
    # later image in the process (other sessions, sklearn's sample photos) fail as a decompression bomb.
    import io

    from PIL import Image

    from encoderscope import images

    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, format="PNG")
    with pytest.raises(images.ImageError):
        images.open_image(buf.getvalue(), max_pixels=100)
    Image.open(io.BytesIO(buf.getvalue())).load()  # PIL itself, for anyone else in the process
    assert Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > 100 * 100
    images.open_image(buf.getvalue())  # and the default cap


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (width, height)).save(buf, format="PNG")
    return buf.getvalue()


def test_the_configured_pixel_cap_is_the_real_one(monkeypatch):
    # Bug caught (issue 17): PIL's DecompressionBombWarning turned into an error, so the real cap was the smaller of
    # the setting and PIL's ~89.5 MP: a server configured for 150 MP still refused a 100 MP image. PIL's cap is
    # lowered here to 10,000 px (one test image is above it, one above twice it) so the test stays small.
    import warnings

    from PIL import Image

    from encoderscope import images

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    above_warning, above_error = _png(150, 100), _png(300, 100)  # 15,000 and 30,000 px
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escalated anywhere (e.g. pytest -W error) must not matter
        for data, size in ((above_warning, (150, 100)), (above_error, (300, 100))):
            image, _ = images.open_image(data, max_pixels=50_000)  # a larger setting works
            assert image.size == size
    with pytest.raises(images.ImageError, match="the limit is"):
        images.open_image(above_warning, max_pixels=12_000)  # a smaller one still refuses, before decoding
    assert Image.MAX_IMAGE_PIXELS == 10_000  # PIL's global is never set by open_image


def test_the_configured_cap_comes_from_the_settings():
    # Bug caught: the setting ignored (a hard-coded cap), in either direction.
    from encoderscope import images, settings

    data = _png(400, 300)  # 120,000 px
    try:
        settings.reload({"ENCODERSCOPE_MAX_IMAGE_PIXELS": "100000"})
        with pytest.raises(images.ImageError, match="400×300"):
            images.open_image(data)
        settings.reload({"ENCODERSCOPE_MAX_IMAGE_PIXELS": "200000"})
        assert images.open_image(data)[0].size == (400, 300)
    finally:
        settings.reload()


def test_formats_still_identified_and_junk_refused():
    import io

    from PIL import Image

    from encoderscope import images

    for fmt in ("JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        buf = io.BytesIO()
        Image.new("RGB", (20, 10), "red").save(buf, format=fmt)
        image, _ = images.open_image(buf.getvalue())
        assert image.size == (20, 10) and image.mode == "RGB"
    with pytest.raises(images.ImageError, match="not an image format"):
        images.open_image(b"definitely not an image, just text")
