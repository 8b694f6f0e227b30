"""VAEs: real TAEF2 weights, strict .pth loading, diffusers plumbing (tiny random models), bad folders."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import encoderscope as es
from encoderscope import vae
from encoderscope.vae import VAEError, taesd


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


# --- single files without a config: the architecture is read from the weights -----------------------------


def _save_single(model, path):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    return path


def _same_model(model, loaded, size=32):
    """Every weight arrived unchanged, and the encoder gives the same latents (up to channels-last rounding)."""
    theirs = loaded.module.state_dict()
    assert set(theirs) == set(model.state_dict())
    assert all(torch.equal(theirs[k], v) for k, v in model.state_dict().items())
    x = vae.to_tensor(Image.new("RGB", (size, size), (90, 160, 30)), loaded)
    with torch.no_grad():
        raw = model.eval().encode(x.contiguous() * 2 - 1).latent_dist.mode()
    expected = (raw - loaded.shift_factor) * loaded.scaling_factor
    torch.testing.assert_close(vae.encode(loaded, x), expected, atol=1e-3, rtol=1e-3)


def test_single_file_without_config_reads_architecture_from_weights(tmp_path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    model = AutoencoderKL(
        block_out_channels=[32, 64, 64],
        down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3,
        layers_per_block=1,
        latent_channels=8,
        use_quant_conv=False,
        mid_block_add_attention=False,
    )
    path = _save_single(model, tmp_path / "odd-widths-vae.safetensors")  # no config.json beside it
    loaded = es.load_vae(str(path))
    cfg = loaded.module.config
    assert list(cfg.block_out_channels) == [32, 64, 64] and cfg.layers_per_block == 1 and cfg.latent_channels == 8
    assert not cfg.use_quant_conv and cfg.use_post_quant_conv and not cfg.mid_block_add_attention
    assert loaded.scaling_factor == 1.0 and "read from the weights" in loaded.notes[0]
    _same_model(model, loaded)
    rt = es.round_trip(loaded, Image.new("RGB", (40, 24), (10, 20, 30)), size=32)
    assert rt.latents.shape == (8, 4, 8)  # three blocks: two downsamplers, 4x


@pytest.mark.parametrize("name,scale", [("my-vae", 0.18215), ("sdxl_vae", 0.13025)])
def test_single_file_four_channels_assumes_sd_scaling(tmp_path, name, scale):
    path = _save_single(_tiny_kl(scaling_factor=0.5), tmp_path / f"{name}.safetensors")
    loaded = es.load_vae(str(path))
    assert loaded.scaling_factor == pytest.approx(scale) and loaded.latent_channels == 4
    assert ("SDXL" if "sdxl" in name else "SD 1.x") in loaded.notes[0]


def test_sd1_shapes_give_the_sd1_config():
    from diffusers import AutoencoderKL

    with torch.device("meta"):  # shapes only: no 330 MB of weights
        sd1 = AutoencoderKL.from_config(vae.SD1_KL_CONFIG)
    config = vae.infer_kl_config({k: tuple(v.shape) for k, v in sd1.state_dict().items()}, "vae-ft-mse")
    assert {k: config[k] for k in vae.SD1_KL_CONFIG} == vae.SD1_KL_CONFIG
    assert config["use_quant_conv"] and config["mid_block_add_attention"]


def test_single_file_that_is_no_vae(tmp_path):
    from safetensors.torch import save_file

    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2, 2)}, tmp_path / "unet.safetensors")
    with pytest.raises(VAEError, match="holds no VAE weights"):
        es.load_vae(str(tmp_path / "unet.safetensors"))
    state = {k: v for k, v in _tiny_kl().state_dict().items() if not k.startswith("decoder.conv_in")}
    save_file(state, tmp_path / "partial-vae.safetensors")
    with pytest.raises(VAEError, match="decoder.conv_in.weight"):
        es.load_vae(str(tmp_path / "partial-vae.safetensors"))


# --- original Stable Diffusion (LDM) checkpoints -------------------------------------------------------------


def _to_ldm(state: dict, blocks: int) -> dict:
    """diffusers AutoencoderKL keys -> the original CompVis/LDM names (what SD .ckpt/.safetensors files hold)."""
    import re

    out = {}
    for key, value in state.items():
        k = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.", r"encoder.down.\1.block.\2.", key)
        k = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", k)
        k = re.sub(r"up_blocks\.(\d+)\.resnets\.(\d+)\.", lambda m: f"up.{blocks - 1 - int(m[1])}.block.{m[2]}.", k)
        k = re.sub(r"up_blocks\.(\d+)\.upsamplers\.0\.", lambda m: f"up.{blocks - 1 - int(m[1])}.upsample.", k)
        k = re.sub(r"mid_block\.resnets\.(\d+)\.", lambda m: f"mid.block_{int(m[1]) + 1}.", k)
        k = k.replace("mid_block.attentions.0.", "mid.attn_1.").replace("conv_shortcut", "nin_shortcut")
        k = k.replace("conv_norm_out", "norm_out")
        for new, old in (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")):
            k = k.replace(f"attn_1.{new}.", f"attn_1.{old}.")
        if ".attn_1." in k and k.endswith(".weight") and value.ndim == 2:
            value = value[:, :, None, None]  # LDM attention projections are 1×1 convs
        out[k] = value.contiguous()
    return out


def test_ldm_checkpoint_loads_offline(tmp_path, monkeypatch):
    """A full-checkpoint-style file: LDM keys under first_stage_model., beside UNet weights; no config, no hub."""
    import socket

    from safetensors.torch import save_file

    def no_network(*args, **kwargs):
        raise AssertionError("loading a local checkpoint must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)

    model = _tiny_kl()
    ldm = {f"first_stage_model.{k}": v for k, v in _to_ldm(model.state_dict(), 2).items()}
    assert "first_stage_model.encoder.down.0.block.0.norm1.weight" in ldm
    ldm["model.diffusion_model.out.2.weight"] = torch.zeros(4, 4)  # not the VAE's: skipped
    save_file(ldm, tmp_path / "tiny-sd-checkpoint.safetensors")
    loaded = es.load_vae(str(tmp_path / "tiny-sd-checkpoint.safetensors"))
    assert loaded.kind == "kl" and loaded.scaling_factor == pytest.approx(0.18215)
    assert "LDM" in loaded.notes[0]
    _same_model(model, loaded)


def test_broken_ldm_checkpoint_is_a_clean_error(tmp_path):
    from safetensors.torch import save_file

    ldm = _to_ldm(_tiny_kl().state_dict(), 2)
    broken = {k: v for k, v in ldm.items() if not k.startswith("decoder.up.0.")}  # a truncated export
    save_file(broken, tmp_path / "broken-vae.safetensors")
    with pytest.raises(VAEError) as err:
        es.load_vae(str(tmp_path / "broken-vae.safetensors"))
    assert "broken-vae.safetensors" in str(err.value) and "Traceback" not in str(err.value)
    assert len(str(err.value)) < 400


# --- public mode: refuse before looking at the path -------------------------------------------------------


def test_local_paths_disabled_refuses_before_touching_the_filesystem(tmp_path, monkeypatch):
    import os
    import pathlib

    from encoderscope import settings

    _tiny_kl().save_pretrained(tmp_path / "real")
    existing, missing = str(tmp_path / "real"), str(tmp_path / "missing")
    touched = []
    for name in ("exists", "is_dir", "is_file", "stat"):
        original = getattr(pathlib.Path, name)

        def spy(self, *args, _original=original, **kwargs):
            touched.append(str(self))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, name, spy)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: touched.append(str(p)) or real_stat(p, *a, **k))
    for env in ({"ENCODERSCOPE_ALLOW_LOCAL_PATHS": "0"}, {"ENCODERSCOPE_PUBLIC": "1"}):
        settings.reload(env)
        try:
            errors = []
            for ref in (existing, missing, existing + "/config.json", "~/x.safetensors"):
                with pytest.raises(VAEError) as err:
                    es.load_vae(ref)
                errors.append(str(err.value))
        finally:
            settings.reload()
        assert len(set(errors)) == 1, errors  # existing and missing paths: one message
        assert "disabled" in errors[0] or "listed VAEs" in errors[0]
        assert not [p for p in touched if str(tmp_path) in p or p.startswith("~")], touched


def test_public_mode_allows_only_listed_and_curated(tmp_path):
    from encoderscope import settings

    torch.manual_seed(0)
    torch.save(taesd.encoder(4).state_dict(), tmp_path / "taesd_encoder.pth")
    torch.save(taesd.decoder(4).state_dict(), tmp_path / "taesd_decoder.pth")
    settings.reload({"ENCODERSCOPE_PUBLIC": "1", "ENCODERSCOPE_MODELS_DIR": str(tmp_path)})
    try:
        assert vae.local_vaes() == [str(tmp_path)]
        assert es.load_vae(str(tmp_path)).latent_channels == 4  # listed: loads
        assert vae.refusal("stabilityai/sd-vae-ft-mse") is None
        with pytest.raises(VAEError, match="unreachable"):  # curated: goes to the hub (offline here)
            es.load_vae("stabilityai/sd-vae-ft-mse")
        for ref in ("someone/their-vae", str(tmp_path / "taesd_encoder.pth"), "a b c"):
            assert vae.refusal(ref) is not None
            with pytest.raises(VAEError, match="listed VAEs|not a valid"):
                es.load_vae(ref)
    finally:
        settings.reload()


# --- folders with several TAESD pairs (ComfyUI's models/vae_approx) -----------------------------------------


@pytest.fixture
def vae_approx(tmp_path):
    """models/vae_approx with an SD (4-channel) and an SD3 (16-channel) pair of random TAESD weights."""
    folder = tmp_path / "models" / "vae_approx"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    for prefix, channels in (("taesd", 4), ("taesd3", 16)):
        torch.save(taesd.encoder(channels).state_dict(), folder / f"{prefix}_encoder.pth")
        torch.save(taesd.decoder(channels).state_dict(), folder / f"{prefix}_decoder.pth")
    return folder


def test_every_pair_of_a_folder_is_listed_and_loads(vae_approx):
    listed = vae.local_vaes(vae_approx.parent)
    assert listed == [str(vae_approx / "taesd3_encoder.pth"), str(vae_approx / "taesd_encoder.pth")]
    for ref, channels, name in ((listed[0], 16, "taesd3"), (listed[1], 4, "taesd")):
        loaded = es.load_vae(ref)
        assert (loaded.latent_channels, loaded.name, loaded.kind) == (channels, name, "taesd")
    assert es.load_vae(str(vae_approx / "taesd3_decoder.pth")).latent_channels == 16  # either half of a pair
    whole = es.load_vae(str(vae_approx))  # the folder itself: the first pair, and a note naming the others
    assert whole.name == "taesd3" and "taesd_encoder.pth" in whole.notes[0]


def test_listed_pairs_load_in_public_mode(vae_approx):
    from encoderscope import settings

    settings.reload({"ENCODERSCOPE_PUBLIC": "1", "ENCODERSCOPE_MODELS_DIR": str(vae_approx.parent)})
    try:
        assert es.load_vae(str(vae_approx / "taesd_encoder.pth")).latent_channels == 4
        with pytest.raises(VAEError, match="listed VAEs"):
            es.load_vae(str(vae_approx / "taesd_decoder.pth"))  # not what the listing offers
    finally:
        settings.reload()


def test_encoder_pth_without_its_decoder(vae_approx):
    (vae_approx / "taesd_decoder.pth").unlink()
    with pytest.raises(VAEError, match="taesd_decoder.pth beside it"):
        es.load_vae(str(vae_approx / "taesd_encoder.pth"))
    (vae_approx / "weights.pth").write_bytes(b"")
    with pytest.raises(VAEError, match="not named like half"):
        es.load_vae(str(vae_approx / "weights.pth"))
