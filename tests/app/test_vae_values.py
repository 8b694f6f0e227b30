"""The image VAE page's numbers, with a tiny random diffusers AutoencoderKL (no TAEF2 weights needed).

Expected values are computed here: latents and decodes straight through diffusers (the KL conventions: mode or a
seeded sample, `(z - shift) * scale` and back), playground edits in numpy from the page's own latents (its
`.npy` download). The preprocessing is the public `es.round_trip`'s `input`.
"""

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import encoderscope as es
from tests.app.conftest import TINY_KL_SCALE, TINY_KL_SHIFT, download, image, messages, no_exceptions, opened, show

SCALE, SHIFT = TINY_KL_SCALE, TINY_KL_SHIFT
VIEW = "vae_view"  # the one-view control: Latents, Reconstruction, Latent playground


@pytest.fixture(scope="module")
def kl(tiny_kl_dir):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(tiny_kl_dir).eval()


@pytest.fixture(scope="module")
def page(tiny_kl_dir):
    at = opened("vae", {"vae": tiny_kl_dir})
    at.select_slider(key="size").set_value(256).run()  # a quarter of the pixels: a faster module
    no_exceptions(at)
    return at


def _sample_photo(name: str) -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image(name))


@pytest.fixture(scope="module")
def encoded_input(page, tiny_kl_dir) -> Image.Image:
    """The page's sample photo as the page encodes it (working size and fit read from its widgets)."""
    size, fit = page.select_slider(key="size").value, page.radio(key="fit").value
    return es.round_trip(es.load_vae(tiny_kl_dir), _sample_photo("china.jpg"), size=size, fit=fit).input


def _encode(kl, image: Image.Image, sample: bool = False, seed: int = 0) -> np.ndarray:
    """Scaled latents `[C, h, w]` of an RGB image, straight through diffusers."""
    x = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]
    with torch.inference_mode():
        dist = kl.encode(x * 2 - 1).latent_dist
        z = dist.sample(torch.Generator().manual_seed(seed)) if sample else dist.mode()
    return ((z - SHIFT) * SCALE)[0].numpy()


def _decode(kl, z: np.ndarray) -> np.ndarray:
    """uint8 image `[H, W, 3]` of scaled latents `[C, h, w]`."""
    with torch.inference_mode():
        y = ((kl.decode(torch.from_numpy(z)[None] / SCALE + SHIFT).sample + 1) / 2).clamp(0, 1)
    return (y[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def _as_shown(pixels: np.ndarray) -> np.ndarray:
    """What the browser gets for an RGB array passed to st.image as PNG: Streamlit re-encodes it as JPEG (q 90)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return np.asarray(Image.open(buf), dtype=float)


def _assert_shows(shown: Image.Image, expected: np.ndarray, wrong: np.ndarray) -> None:
    """`shown` is `expected` (after the JPEG step) and clearly not `wrong`."""
    shown = np.asarray(shown.convert("RGB"), dtype=float)
    assert shown.shape == expected.shape
    error = np.abs(shown - _as_shown(expected)).mean()
    assert error < 0.5, f"mean abs error {error:.2f} against the expected image"
    assert np.abs(shown - _as_shown(wrong)).mean() > 5 * max(error, 0.2), "the expected and wrong images are alike"


def _page_latents(at) -> np.ndarray:
    name, data = download(at, "Latents (.npy)")
    assert name == "latents.npy"
    return np.load(io.BytesIO(data), allow_pickle=False)


def test_latents_are_the_scaled_kl_mode(page, kl, encoded_input):
    # Bug: latents not scaled/shifted (or inverted), a sample instead of the mean, or a transposed array.
    z = _page_latents(show(page, VIEW, "Latents"))
    expected = _encode(kl, encoded_input)
    assert z.dtype == np.float32 and z.shape == expected.shape
    np.testing.assert_allclose(z, expected, atol=1e-4)
    metrics = {m.label: m.value for m in page.metric}
    C, h, w = expected.shape
    assert metrics["Latent shape"] == f"{C}×{h}×{w}"
    assert metrics["Image"] == f"{encoded_input.size[0]}×{encoded_input.size[1]}"
    assert metrics["Value range"] == f"{expected.min():.2f} … {expected.max():.2f}"


def test_channel_statistics_table(page, kl, encoded_input):
    # Bug: statistics over the wrong axis (per row instead of per channel).
    z = _encode(kl, encoded_input).reshape(4, -1)
    table = show(page, VIEW, "Latents").dataframe[0].value
    assert list(table["channel"]) == [0, 1, 2, 3]
    for column, values in (("mean", z.mean(1)), ("std", z.std(1)), ("min", z.min(1)), ("max", z.max(1))):
        np.testing.assert_allclose(table[column].to_numpy(float), values, atol=1.1e-3)


def test_safetensors_download_equals_the_npy(page):
    # Bug: the two formats exporting different arrays (e.g. one transposed or cast to float16).
    from safetensors.numpy import load

    name, data = download(page, "(.safetensors)")
    assert name == "latents.safetensors"
    tensors = load(data)
    assert list(tensors) == ["latents"]
    np.testing.assert_array_equal(tensors["latents"], _page_latents(page))


def test_reconstruction_png_is_the_decoded_latents(page, kl, encoded_input):
    # Bug: the download holding the input instead of the reconstruction, or decoding without undoing the scale.
    name, data = download(page, "Reconstruction (.png)")
    assert name == "reconstruction.png"
    png = Image.open(io.BytesIO(data))
    assert png.format == "PNG" and png.size == encoded_input.size
    expected = _decode(kl, _page_latents(page))
    assert np.abs(np.asarray(png, dtype=int) - expected).max() <= 1
    _assert_shows(image(show(page, VIEW, "Latent playground"), "decoded original latents"), expected,
                  np.asarray(encoded_input))


def _playground(at, channel=0, op="scale", amount=None, sigma=0.0, t=0.0):
    show(at, VIEW, "Latent playground")
    at.number_input(key="pg_channel").set_value(channel)
    at.selectbox(key="pg_op").set_value(op)
    at.slider(key="pg_sigma").set_value(sigma)
    at.slider(key="pg_t").set_value(t)
    at.radio(key="pg_partner").set_value("sample")
    at.run()
    if amount is not None:
        at.slider(key=f"pg_amount_{op}").set_value(amount)
        at.run()
    no_exceptions(at)
    assert not at.error, messages(at)
    return at


def _edited(z: np.ndarray, channel: int, op: str, amount: float) -> np.ndarray:
    edited = z.copy()
    if op == "zero":
        edited[channel] = 0
    elif op == "scale":
        edited[channel] *= amount
    else:  # shift by `amount` standard deviations of that channel
        edited[channel] += amount * z[channel].std()
    return edited


@pytest.mark.parametrize(
    "channel,op,amount",
    [
        (2, "zero", None),  # bug: another channel zeroed, or every channel
        (1, "scale", -1.5),  # bug: the factor applied to the whole latent
        (3, "shift", 2.0),  # bug: shifted by the amount itself instead of amount × the channel's std
    ],
)
def test_channel_edit_decodes_the_edited_latents(page, kl, channel, op, amount):
    _playground(page, channel, op, amount)
    z = _page_latents(page)
    edited = _edited(z, channel, op, amount)
    if op == "zero":
        assert (edited[channel] == 0).all() and np.array_equal(np.delete(edited, channel, 0), np.delete(z, channel, 0))
    wrong = _edited(z, (channel + 1) % 4, op, amount)  # the same edit on the neighbouring channel
    _assert_shows(image(page, "decoded edited latents"), _decode(kl, edited), _decode(kl, wrong))


def test_noise_is_seeded_and_scaled_by_the_latent_std(page, kl):
    # Bug: noise not scaled by σ × the latents' std, or a fresh draw on every rerun (edits would flicker).
    _playground(page, sigma=0.5)
    z = _page_latents(page)
    noise = np.random.default_rng(0).normal(size=z.shape).astype(np.float32)
    _assert_shows(image(page, "decoded edited latents"), _decode(kl, z + noise * 0.5 * z.std()), _decode(kl, z + noise * 0.5))


def test_interpolation_towards_the_other_sample(page, kl, encoded_input):
    # Bug: t applied the wrong way round ((1 - t) on the partner), or the partner not fitted to this image's size.
    _playground(page, t=0.25)
    z = _page_latents(page)
    partner = ImageOps.fit(_sample_photo("flower.jpg"), encoded_input.size, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    towards = _encode(kl, partner)
    assert "flower.jpg, fitted to" in " ".join(c for e in page.get("image") for c in e.captions).replace("\\", "")
    expected = (1 - 0.25) * z + 0.25 * towards
    wrong = 0.25 * z + (1 - 0.25) * towards
    _assert_shows(image(page, "decoded edited latents"), _decode(kl, expected), _decode(kl, wrong))


def test_sample_toggle_and_seed(page, kl, encoded_input):
    # Bug: the toggle or the seed ignored (or missing from the cache key), so the mean is shown for a sample.
    mode = _encode(kl, encoded_input)
    page.toggle(key="sample").set_value(True).run()  # the seed box is enabled by the toggle
    page.number_input(key="seed").set_value(7).run()
    no_exceptions(page)
    first = _page_latents(page)
    np.testing.assert_allclose(first, _encode(kl, encoded_input, sample=True, seed=7), atol=1e-4)
    assert np.abs(first - mode).max() > 1e-2
    page.number_input(key="seed").set_value(8).run()
    no_exceptions(page)
    second = _page_latents(page)
    np.testing.assert_allclose(second, _encode(kl, encoded_input, sample=True, seed=8), atol=1e-4)
    assert np.abs(second - first).max() > 1e-2
    page.toggle(key="sample").set_value(False).run()
    np.testing.assert_allclose(_page_latents(page), mode, atol=1e-4)


def test_progress_is_reported_and_cleared(tiny_kl_dir, monkeypatch):
    # Bug: no progress for the slow KL path, fractions going backwards or past 1, or a bar left on the page.
    from streamlit.delta_generator import DeltaGenerator

    at = opened("vae", {"vae": tiny_kl_dir})
    calls = []
    original = DeltaGenerator.progress

    def spy(self, value, text=None, **kwargs):
        calls.append((float(value), text or ""))
        return original(self, value, text=text, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "progress", spy)
    at.select_slider(key="size").set_value(256)
    at.radio(key="fit").set_value("pad").run()  # a round trip no other test computes: not a cache hit
    no_exceptions(at)
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and "256 px" in calls[0][1]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    texts = [t for _, t in calls[1:]]
    assert any(t.startswith("Encoding: stage") for t in texts) and any(t.startswith("Decoding: stage") for t in texts)
    assert all(t.endswith(", 256 px)") for t in texts)
    assert not at.get("progress")  # the bar is gone once the result is shown
    assert {m.label: m.value for m in at.metric}["Image"].startswith("256×")
