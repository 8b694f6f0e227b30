"""Real browser: upload an image through the file chooser and see it round-trip through TAEF2."""

import base64
import io

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_image

from tests.e2e.conftest import SHOTS, exception_boxes, open_page, pick_view, plots, shot, wait_for_chart, wait_idle


def test_vae_upload(page, app_url, taef2_dir):
    SHOTS.mkdir(exist_ok=True)
    upload = SHOTS / "upload_flower.jpg"
    Image.fromarray(load_sample_image("flower.jpg")).save(upload)
    open_page(page, app_url, "vae")
    wait_for_chart(page, timeout=300_000)  # the sample photo round-trips first (slow when the machine is busy)
    page.get_by_text("Upload", exact=True).click()
    wait_idle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    page.get_by_text("flower.jpg as encoded").wait_for(timeout=120_000)
    wait_idle(page)
    assert page.get_by_text("Latent shape").first.is_visible()
    assert page.get_by_text("32×42×64").first.is_visible()
    assert exception_boxes(page) == 0
    shot(page, "vae_latents")
    pick_view(page, "Reconstruction")
    page.get_by_text("PSNR", exact=True).first.wait_for()
    # one view at a time: the latents' metrics leave (once the rerun ends), they do not sit hidden
    page.wait_for_function("() => ![...document.querySelectorAll('[data-testid=stMetricLabel]')]"
                           ".some(e => e.innerText.includes('Latent shape'))", timeout=60_000)
    page.wait_for_function(f"() => ({_RENDERED_JS})().length === 2", timeout=60_000)  # Plotly draws after the run
    _assert_reconstruction_drawn(page, upload, taef2_dir)
    shot(page, "vae_reconstruction")
    pick_view(page, "Latent playground")
    # Zero channel 0: the fragment reruns and decodes the edited latents.
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Edit").click()
    page.get_by_role("option", name="zero", exact=True).click()
    page.get_by_text("decoded edited latents (channel 0: zero)").wait_for(timeout=120_000)
    wait_idle(page)
    assert exception_boxes(page) == 0
    shot(page, "vae_playground")


_DECODE_JS = """async (uri) => {
  const img = new Image();
  img.src = uri;
  await img.decode();
  return [img.naturalWidth, img.naturalHeight];
}"""


_RENDERED_JS = """() => {
  const compare = [...document.querySelectorAll('.js-plotly-plot')].find(gd => !gd.closest('[data-stale="true"]')
      && gd._fullData && gd._fullData.length === 2 && gd._fullData.every(t => t.type === 'image'));
  return compare ? [...compare.querySelectorAll('image')].map(el => el.getBoundingClientRect().width) : [];
}"""


def _data_uri_image(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")


def _assert_reconstruction_drawn(page, upload, taef2_dir) -> None:
    """The Reconstruction view draws two images the browser can decode, of the encoded size: the input exactly
    as the library prepares it, and TAEF2's reconstruction of it (close to the library's own round trip)."""
    import encoderscope as es
    from encoderscope import images

    photo = Image.open(upload).convert("RGB")
    prepared, _ = images.prepare(photo, 512, "crop")
    shown = [t["source"] for p in plots(page) for t in p["traces"] if t["type"] == "image" and t["source"]]
    assert len(shown) == 2, "the comparison should draw the original and the reconstruction"
    for uri in shown:
        assert tuple(page.evaluate(_DECODE_JS, uri)) == prepared.size  # an <img> with that naturalWidth/Height
    original, recon = (np.asarray(_data_uri_image(uri), dtype=np.float64) for uri in shown)
    np.testing.assert_array_equal(original, np.asarray(prepared))
    reference = np.asarray(es.round_trip(es.load_vae(str(taef2_dir)), photo, size=512).reconstruction, np.float64)
    assert np.abs(recon - reference).mean() < 1.0, "the drawn reconstruction is not TAEF2's reconstruction"
    assert 20 < images.psnr(original / 255, recon / 255) < 60, "a reconstruction is close to the input but not the input"
    widths = page.evaluate(_RENDERED_JS)  # the SVG <image> elements Plotly drew for the two image traces
    assert len(widths) == 2 and min(widths) > 100, widths


def test_vae_bad_upload(page, app_url, taef2_dir):
    SHOTS.mkdir(exist_ok=True)
    bad = SHOTS / "not_an_image.png"
    bad.write_bytes(b"this is text, not a PNG")
    open_page(page, app_url, "vae")
    page.get_by_text("Upload", exact=True).click()
    wait_idle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(bad))
    page.get_by_text("not an image format we can read").wait_for(timeout=60_000)
    wait_idle(page)
    assert exception_boxes(page) == 0
    assert page.locator(".js-plotly-plot").count() == 0
    shot(page, "vae_bad_upload", full_page=False)


def test_vae_interpolate_towards_second_upload(page, app_url, taef2_dir):
    """Latent playground: a portrait second image is fitted to the landscape sample and interpolated with it."""
    SHOTS.mkdir(exist_ok=True)
    second = SHOTS / "second_portrait.png"
    Image.fromarray(load_sample_image("flower.jpg")[:, 150:450]).save(second)  # 300×427 portrait crop
    open_page(page, app_url, "vae")
    wait_for_chart(page, timeout=300_000)
    pick_view(page, "Latent playground")
    page.get_by_text("upload a second image", exact=True).click()
    wait_idle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').last.set_input_files(str(second))
    page.get_by_text("second_portrait.png, fitted to 512×336").wait_for(timeout=120_000)
    wait_idle(page)
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Interpolate towards")
    thumb = slider.locator('input[type="range"]')
    thumb.focus()
    for _ in range(10):  # 10 steps of 0.05
        thumb.press("ArrowRight")
    page.get_by_text("decoded edited latents (50% towards the second image)").wait_for(timeout=120_000)
    wait_idle(page)
    assert exception_boxes(page) == 0
    assert page.locator('[data-testid="stAlert"]').count() == 0
    shot(page, "vae_playground_second_image")
