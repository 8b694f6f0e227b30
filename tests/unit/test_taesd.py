"""The TAESD-family module: every variant's layout (SD/SDXL 4 channels, SD3/FLUX.1 16, FLUX.2 32 with the
pool branch) is inferred from the weights and loads strictly; the pool branch does what README says."""

import pytest
import torch

from encoderscope.vae import taesd


@pytest.mark.parametrize(
    "channels,pooled",
    [(4, set()), (16, set()), (32, {11, 12, 13})],
    ids=["sd-sdxl", "sd3-flux1", "flux2"],
)
def test_variants_round_trip_through_state_dicts(channels, pooled):
    torch.manual_seed(0)
    enc = taesd.encoder(channels, pooled)
    dec = taesd.decoder(channels, {3, 4, 5} if pooled else set())
    enc2 = taesd.build("encoder", {k: v.clone() for k, v in enc.state_dict().items()})
    dec2 = taesd.build("decoder", {k: v.clone() for k, v in dec.state_dict().items()})
    x = torch.rand(1, 3, 32, 48)
    with torch.inference_mode():
        z = enc2(x)
        assert z.shape == (1, channels, 4, 6)
        torch.testing.assert_close(z, enc(x))
        assert dec2(z).shape == (1, 3, 32, 48)
    assert taesd._pooled(enc.state_dict()) == pooled and taesd._pooled(dec2.state_dict()) == (
        {3, 4, 5} if pooled else set()
    )


def test_strict_loading_rejects_extra_and_missing_keys():
    state = taesd.encoder(4).state_dict()
    with pytest.raises(taesd.TAESDError, match="do not match"):
        taesd.build("encoder", {**state, "99.weight": torch.zeros(1)})
    state.pop("1.conv.0.weight")
    with pytest.raises(taesd.TAESDError, match="do not match"):
        taesd.build("encoder", state)


def test_pool_branch_is_residual():
    block = taesd.Block(64, 64, pool=True)
    for p in block.pool[-1].parameters():
        torch.nn.init.zeros_(p)  # a zero last conv: the pool branch adds nothing
    plain = taesd.Block(64, 64)
    plain.load_state_dict({k: v for k, v in block.state_dict().items() if not k.startswith("pool.")})
    x = torch.randn(1, 64, 8, 8)
    torch.testing.assert_close(block(x), plain(x))


def test_real_taef2_layout(taef2_dir):
    enc = taesd.load_state(taef2_dir / "taef2_encoder.pth")
    dec = taesd.load_state(taef2_dir / "taef2_decoder.pth")
    assert taesd._pooled(enc) == {11, 12, 13} and taesd._pooled(dec) == {3, 4, 5}  # decoder index 0 is the clamp
    assert all(v.dtype == torch.float32 for v in enc.values())
    assert taesd.find_pair(taef2_dir) == (taef2_dir / "taef2_encoder.pth", taef2_dir / "taef2_decoder.pth")


def test_find_pairs_returns_every_pair(tmp_path):
    """ComfyUI's models/vae_approx: several prefixes in one folder, plus a lone encoder that has no partner."""
    for prefix in ("taesd", "taesdxl", "taef1"):
        for part in ("encoder", "decoder"):
            (tmp_path / f"{prefix}_{part}.pth").write_bytes(b"")
    (tmp_path / "taesd3_encoder.pth").write_bytes(b"")
    pairs = taesd.find_pairs(tmp_path)
    assert [(e.name, d.name) for e, d in pairs] == [
        ("taef1_encoder.pth", "taef1_decoder.pth"),
        ("taesd_encoder.pth", "taesd_decoder.pth"),
        ("taesdxl_encoder.pth", "taesdxl_decoder.pth"),
    ]
    assert taesd.find_pair(tmp_path) == pairs[0]
    assert [taesd.pair_name(e) for e, _ in pairs] == ["taef1", "taesd", "taesdxl"]
    assert taesd.partner(tmp_path / "taesd3_encoder.pth") == tmp_path / "taesd3_decoder.pth"
    assert taesd.partner(tmp_path / "taesd_decoder.pth") == tmp_path / "taesd_encoder.pth"
    assert taesd.partner(tmp_path / "weights.pth") is None
