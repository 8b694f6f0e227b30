"""How the VAE picker names its options (`components.vae.views.vae_label`)."""

from components.vae.views import vae_label


def test_taesd_pair_is_shown_by_its_name_and_path():
    ref = "/models/vae_approx/taesd3_encoder.pth"
    assert vae_label(ref) == f"taesd3 · {ref}"


def test_other_references_are_shown_as_typed():
    for ref in ("madebyollin/taesd", "/models/sdxl-vae", "/models/vae_approx/taesd3_decoder.pth"):
        assert vae_label(ref) == ref
