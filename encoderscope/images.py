"""Image input for the VAE page: safe decoding, normalisation to RGB, sizing, and image metrics.

Every step that changes the picture appends a note, so the UI can show exactly what was encoded.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import settings
from .errors import UserFacingError

SIZES = (256, 512, 768)


class ImageError(UserFacingError):
    """An upload could not be used as an image; `str(err)` says why, for the user."""


def open_image(data: bytes, max_pixels: int | None = None) -> tuple[Image.Image, list[str]]:
    """Decode an upload into an RGB image. Returns (image, notes).

    The pixel count is checked from the header *before* decoding (decompression bombs) against `max_pixels`
    (default settings.max_image_pixels), which is the real cap: larger or smaller than PIL's own. PIL's global
    Image.MAX_IMAGE_PIXELS is neither read at open time nor set (setting it per call leaked one caller's cap into
    every other image the process opens), and its DecompressionBombWarning is left a warning. Applies EXIF
    orientation, takes the first frame of animations, composites transparency over white and converts
    palette/16-bit/CMYK/greyscale to RGB.
    """
    cap = settings.get().max_image_pixels if max_pixels is None else max_pixels
    if not data:
        raise ImageError("The file is empty.")
    notes: list[str] = []
    try:
        image = _identify(data)
        w, h = image.size
        if w * h > cap:
            raise ImageError(f"The image is {w}×{h} = {w * h / 1e6:.1f} MP; the limit is {cap / 1e6:.0f} MP.")
        if getattr(image, "n_frames", 1) > 1:
            notes.append(f"Animated image with {image.n_frames} frames: using the first frame.")
            image.seek(0)
        image.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as err:  # a frame or tile past PIL's own cap (GIF, TIFF, WebP: see SECURITY.md)
        raise ImageError(f"The image is too large to decode safely (limit {cap / 1e6:.0f} MP).") from err
    except UnidentifiedImageError as err:
        raise ImageError("This file is not an image format we can read (PNG, JPEG, WebP, BMP, GIF, TIFF).") from err
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageError(f"The image is damaged or truncated and cannot be decoded ({str(err)[:120]}).") from err
    if min(image.size) < 1:
        raise ImageError("The image has no pixels.")
    fmt = image.format or "image"
    transposed = ImageOps.exif_transpose(image)
    if transposed.size != image.size or transposed.tobytes()[:64] != image.tobytes()[:64]:
        notes.append("Rotated according to the EXIF orientation tag.")
    image = transposed
    return to_rgb(image, notes, fmt), notes


def _identify(data: bytes) -> Image.Image:
    """`Image.open(data)` without its check against PIL's process-wide MAX_IMAGE_PIXELS (a warning above about
    89.5 MP, an error above twice that), so the caller's own cap, checked right after from the header, is the one
    that holds. Nothing is decoded here. The loop is Image.open's own: each registered format's `accept` test on
    the first bytes, then its opener (PIL's public plugin registry, Image.ID and Image.OPEN)."""
    Image.init()
    prefix = data[:16]
    for fmt in Image.ID:
        opener, accept = Image.OPEN[fmt]
        accepted = accept(prefix) if accept else True
        if not accepted or isinstance(accepted, str):  # a str is PIL's "looks like this format, but unsupported"
            continue
        try:
            return opener(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # not this format after all, as Image.open does
    raise UnidentifiedImageError("cannot identify image file")


def to_rgb(image: Image.Image, notes: list[str], fmt: str = "image") -> Image.Image:
    """Any PIL mode -> RGB; transparency is composited over white, 16-bit is scaled to 8-bit."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        image = Image.fromarray(np.clip(arr / top * 255, 0, 255).astype(np.uint8), "L")
        notes.append(f"{mode} (high bit depth) image scaled to 8 bits.")
    elif mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = np.nanmin(arr), np.nanmax(arr)
        image = Image.fromarray(((arr - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8), "L")
        notes.append("Floating-point image rescaled to 8 bits.")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        notes.append("Palette image converted to RGB.")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "RGB" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
        notes.append("Transparent areas composited over white.")
    if image.mode == "CMYK":
        notes.append("CMYK image converted to RGB.")
    elif image.mode in ("L", "1"):
        notes.append("Greyscale image converted to RGB.")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


FITS = ("crop", "pad", "square")


def prepare(image: Image.Image, size: int, fit: str = "crop") -> tuple[Image.Image, list[str]]:
    """Resize so the long side is `size`, then centre-crop (`fit="crop"`) or pad with white (`"pad"`)
    each side to a multiple of 8, as the VAE's 8x downsampling needs; `"square"` first centre-crops the
    largest square (size × size, as Stable Diffusion is trained on). Returns (image, notes)."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}")
    notes = []
    w, h = image.size
    if fit == "square" and w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
        notes.append(f"Centre-cropped to a {side}×{side} square.")
        w, h = image.size
        fit = "crop"
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) != (w, h):
        image = image.resize((nw, nh), Image.Resampling.LANCZOS)
        notes.append(f"Resized from {w}×{h} to {nw}×{nh} (long side {size}).")
    if fit == "crop" and (nw < 8 or nh < 8):
        fit = "pad"
        notes.append("Too small to crop to a multiple of 8: padding instead.")
    if fit == "crop":
        tw, th = nw // 8 * 8, nh // 8 * 8
        if (tw, th) != (nw, nh):
            left, top = (nw - tw) // 2, (nh - th) // 2
            image = image.crop((left, top, left + tw, top + th))
            notes.append(f"Centre-cropped to {tw}×{th} (multiples of 8).")
    else:
        tw, th = -(-nw // 8) * 8, -(-nh // 8) * 8
        if (tw, th) != (nw, nh):
            canvas = Image.new("RGB", (tw, th), (255, 255, 255))
            canvas.paste(image, ((tw - nw) // 2, (th - nh) // 2))
            image = canvas
            notes.append(f"Padded with white to {tw}×{th} (multiples of 8).")
    return image, notes


def fit_to(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, list[str]]:
    """Scale `image` to cover `size` = (width, height) and centre-crop the rest, so a second image matches the
    first one's pixel size (and so its latent shape). Returns (RGB image of exactly `size`, notes)."""
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive, got {size}")
    rgb = to_rgb(image, [])
    if rgb.size == (width, height):
        return rgb, []
    fitted = ImageOps.fit(rgb, (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    return fitted, [f"Resized and centre-cropped from {rgb.size[0]}×{rgb.size[1]} to {width}×{height}."]


def to_array(image: Image.Image) -> np.ndarray:
    """RGB image -> float32 `[H, W, 3]` in [0, 1]."""
    return np.asarray(image, dtype=np.float32) / 255.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1] (`[H, W, 3]`)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004; Gaussian window σ=1.5) of two `[H, W, 3]` images in [0, 1],
    averaged over channels."""
    from scipy.ndimage import gaussian_filter

    c1, c2 = 0.01**2, 0.03**2
    scores = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)
        mx, my = gaussian_filter(x, 1.5), gaussian_filter(y, 1.5)
        sxx = gaussian_filter(x * x, 1.5) - mx * mx
        syy = gaussian_filter(y * y, 1.5) - my * my
        sxy = gaussian_filter(x * y, 1.5) - mx * my
        scores.append(((2 * mx * my + c1) * (2 * sxy + c2) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))).mean())
    return float(np.mean(scores))


def latent_rgb_preview(latents: np.ndarray, image: np.ndarray) -> np.ndarray:
    """A linear map latent channels -> RGB, least-squares fitted on this image: `[C, h, w]` -> `[h, w, 3]`.

    `image` `[H, W, 3]` in [0, 1] is area-downsampled to the latent grid to give the fitting targets.
    """
    C, h, w = latents.shape
    small = (
        np.asarray(
            Image.fromarray((image * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BOX), dtype=np.float64
        )
        / 255
    )
    X = np.concatenate([latents.reshape(C, -1).T.astype(np.float64), np.ones((h * w, 1))], axis=1)  # [hw, C+1]
    coef, *_ = np.linalg.lstsq(X, small.reshape(-1, 3), rcond=None)
    return np.clip(X @ coef, 0, 1).reshape(h, w, 3).astype(np.float32)


def to_png(image: Image.Image | np.ndarray) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


# An Inferno-like dark-to-bright ramp, drawn by numpy so the PNG exports and the page use the same colours
# (Streamlit repaints Plotly's Inferno start colour pink).
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32) / 255


def colorize(values: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Values `[h, w]` -> RGB float32 `[h, w, 3]` in [0, 1] on a dark-to-bright ramp (vmin/vmax default to the
    data range)."""
    values = np.asarray(values, np.float64)
    lo = np.nanmin(values) if vmin is None else vmin
    hi = np.nanmax(values) if vmax is None else vmax
    t = np.clip((values - lo) / (hi - lo if hi > lo else 1.0), 0, 1) * (len(_RAMP) - 1)
    i = np.minimum(t.astype(int), len(_RAMP) - 2)
    frac = (t - i)[..., None]
    return (_RAMP[i] * (1 - frac) + _RAMP[i + 1] * frac).astype(np.float32)
