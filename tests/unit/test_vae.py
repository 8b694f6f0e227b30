"""VAEs: real TAEF2 weights, strict .pth loading, diffusers plumbing (tiny random models), bad folders."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import encoderscope as es
from encoderscope import taesd, vae
from encoderscope.vae import VAEError


@pytest.fixture(scope="module")
def china():
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image("china.jpg"))


@pytest.fixture(scope="module")
def taef2(taef2_dir):
    return es.load_vae(str(taef2_dir))


def test_taef2_round_trip_real_weights(taef2, china):
    rt = es.round_trip(taef2, china, size=512, fit="square")
    assert rt.latents.shape == (32, 64, 64) and rt.latents.dtype == np.float32
    assert rt.psnr >= 23.0, rt.psnr
    assert rt.reconstruction.size == rt.input.size == (512, 512)
    assert -8 < rt.latents.min() < 0 < rt.latents.max() < 8
    assert rt.compression == pytest.approx(512 * 512 * 3 / (32 * 64 * 64))
    assert taef2.kind == "taesd" and taef2.latent_channels == 32 and taef2.input_range == "[0, 1]"


def test_taef2_non_square_keeps_aspect(taef2, china):
    rt = es.round_trip(taef2, china, size=256, fit="crop")
    assert rt.input.size == (256, 168) and rt.latents.shape == (32, 21, 32) and rt.psnr > 20


def test_strict_loading_uses_every_key(taef2_dir):
    for part in ("encoder", "decoder"):
        state = taesd.load_state(taef2_dir / f"taef2_{part}.pth")
        module = taesd.build(part, state)
        assert set(module.state_dict()) == set(state)  # no missing, no unexpected keys
    assert {int(k.split(".")[0]) for k in state if ".pool." in k} == {3, 4, 5}


def test_missing_or_mismatched_pair(taef2_dir, tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(taef2_dir / "taef2_encoder.pth", one)
    with pytest.raises(VAEError, match="pair"):
        es.load_vae(str(one))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(taef2_dir / "taef2_encoder.pth", mixed / "x_encoder.pth")
    small = taesd.decoder(4)  # an SD-style 4-channel decoder
    torch.save(small.state_dict(), mixed / "x_decoder.pth")
    with pytest.raises(VAEError, match="mismatched"):
        es.load_vae(str(mixed))


def test_pth_that_is_not_a_state_dict(tmp_path):
    torch.save([1, 2, 3], tmp_path / "bad_encoder.pth")
    torch.save({"a": 1}, tmp_path / "bad_decoder.pth")
    with pytest.raises(VAEError, match="state dict"):
        es.load_vae(str(tmp_path))
    (tmp_path / "bad_encoder.pth").write_bytes(b"not a zip file at all")
    with pytest.raises(VAEError, match="not a readable"):
        es.load_vae(str(tmp_path))


def test_sd_style_taesd_pair_infers_four_channels(tmp_path):
    torch.manual_seed(0)
    torch.save(taesd.encoder(4).state_dict(), tmp_path / "taesd_encoder.pth")
    torch.save(taesd.decoder(4).state_dict(), tmp_path / "taesd_decoder.pth")
    loaded = es.load_vae(str(tmp_path))
    assert loaded.latent_channels == 4
    rt = es.round_trip(loaded, Image.new("RGB", (64, 48), (200, 30, 30)), size=64)
    assert rt.latents.shape == (4, 6, 8)


def _tiny_kl(**config):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=[32, 64],
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
        **config,
    )


def test_diffusers_folder_kl_scaling_both_ways(tmp_path):
    _tiny_kl(scaling_factor=0.5, shift_factor=0.1).save_pretrained(tmp_path)
    loaded = es.load_vae(str(tmp_path))
    assert loaded.kind == "kl" and loaded.scaling_factor == 0.5 and loaded.shift_factor == pytest.approx(0.1)
    x = vae.to_tensor(Image.new("RGB", (32, 32), (120, 60, 200)), loaded)
    z = vae.encode(loaded, x)
    raw = loaded.module.encode(x * 2 - 1).latent_dist.mode()
    torch.testing.assert_close(z, (raw - 0.1) * 0.5)
    y = vae.decode(loaded, z)
    expected = ((loaded.module.decode(z / 0.5 + 0.1).sample + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(y, expected)
    assert y.shape == (1, 3, 32, 32) and torch.isfinite(y).all()
    sampled = vae.encode(loaded, x, sample=True, seed=3)
    assert not torch.equal(sampled, z) and torch.equal(sampled, vae.encode(loaded, x, sample=True, seed=3))


def test_latents_mean_std_convention(tmp_path):
    _tiny_kl(scaling_factor=0.3, latents_mean=[0.1, 0.2, 0.3, 0.4], latents_std=[1.0, 2.0, 3.0, 4.0]).save_pretrained(
        tmp_path
    )
    loaded = es.load_vae(str(tmp_path))
    x = vae.to_tensor(Image.new("RGB", (16, 16), (10, 200, 90)), loaded)
    raw = loaded.module.encode(x * 2 - 1).latent_dist.mode()
    mean, std = (
        torch.tensor([0.1, 0.2, 0.3, 0.4]).view(1, -1, 1, 1),
        torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, -1, 1, 1),
    )
    torch.testing.assert_close(vae.encode(loaded, x), (raw - mean) * 0.3 / std)


def test_diffusers_tiny_folder(tmp_path):
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8), latent_channels=4
    ).save_pretrained(tmp_path)
    loaded = es.load_vae(str(tmp_path))
    assert loaded.kind == "tiny" and loaded.input_range == "[-1, 1]"
    rt = es.round_trip(loaded, Image.new("RGB", (40, 40), (0, 128, 255)), size=64)
    assert rt.latents.shape == (4, 8, 8) and np.isfinite(rt.latents).all()


def test_single_file_safetensors(tmp_path):
    from safetensors.torch import save_file

    model = _tiny_kl(scaling_factor=0.18215)
    model.save_config(tmp_path)
    save_file(model.state_dict(), tmp_path / "tiny-vae.safetensors")
    loaded = es.load_vae(str(tmp_path / "tiny-vae.safetensors"))
    assert loaded.kind == "kl" and loaded.scaling_factor == pytest.approx(0.18215)
    rt = es.round_trip(loaded, Image.new("RGB", (24, 24), (50, 50, 50)), size=32)
    assert rt.latents.shape == (4, 16, 16) and np.isfinite(np.asarray(rt.reconstruction)).all()
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(VAEError, match="not a readable"):
        es.load_vae(str(tmp_path / "broken.safetensors"))


def test_nan_output_is_explained(tmp_path):
    model = _tiny_kl()
    with torch.no_grad():
        model.decoder.conv_out.weight.fill_(float("nan"))
    model.save_pretrained(tmp_path)
    loaded = es.load_vae(str(tmp_path))
    with pytest.raises(VAEError, match="NaN"):
        es.round_trip(loaded, Image.new("RGB", (16, 16)), size=16)


@pytest.mark.parametrize(
    "ref,match",
    [
        ("madebyollin/taesd", "unreachable"),
        ("no-such/vae", "unreachable"),
        ("../../etc/passwd", "No VAE"),
        ("a b c", "not a valid"),
    ],
)
def test_bad_refs_offline(ref, match):
    with pytest.raises(VAEError, match=match):
        es.load_vae(ref)


def test_folder_without_vae(tmp_path):
    with pytest.raises(VAEError, match="holds no VAE"):
        es.load_vae(str(tmp_path))
    (tmp_path / "config.json").write_text('{"_class_name": "UNet2DModel"}')
    with pytest.raises(VAEError, match="not an AutoencoderKL"):
        es.load_vae(str(tmp_path))


def test_models_dir_scan(taef2_dir, monkeypatch):
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_MODELS_DIR": str(taef2_dir.parent)})
    try:
        assert str(taef2_dir) in vae.local_vaes()
        assert vae.default_vae() == str(taef2_dir)
    finally:
        settings.reload()


def test_progress_reports_every_stage(tmp_path):
    _tiny_kl().save_pretrained(tmp_path)
    loaded = es.load_vae(str(tmp_path))
    seen = []
    es.round_trip(loaded, Image.new("RGB", (16, 16)), size=16, progress=lambda f, text: seen.append((f, text)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any(t.startswith("Encoding") for _, t in seen) and any(t.startswith("Decoding") for _, t in seen)
    assert not any(m._forward_hooks for m in loaded.module.modules())  # hooks removed afterwards


def test_figures_stay_small_and_centred():
    import plotly.io as pio

    from encoderscope.figures import vae as fv

    rng = np.random.default_rng(0)
    for shape in [(4, 64, 64), (32, 64, 64), (16, 42, 96)]:
        fig = fv.latent_grid(rng.normal(size=shape).astype(np.float32))
        trace = fig.data[0]
        assert trace.zmid == 0 and trace.zmin == -trace.zmax and len(fig.layout.annotations) == shape[0]
        assert len(pio.to_json(fig.to_dict(), validate=False)) < 300_000
    a = rng.random((336, 512, 3)).astype(np.float32)
    diff = fv.difference_heatmap(a, np.clip(a + 0.1, 0, 1))
    assert diff.data[0].zmin == 0 and max(np.asarray(diff.data[0].z).shape) <= 192
    pair = fv.side_by_side((a * 255).astype(np.uint8), a)
    assert all(t.source.startswith("data:image/webp;base64,") for t in pair.data)
    assert pair.layout.xaxis2.matches == "x" and pair.layout.yaxis2.matches == "y"
