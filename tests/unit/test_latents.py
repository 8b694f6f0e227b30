"""Latent edits and channel statistics on a tiny hand-written `[C, h, w]` array."""

import numpy as np
import pytest

from encoderscope import latents

# Two channels of 2×2: channel 0 = [1, 2, 3, 4] (mean 2.5, std sqrt(1.25)), channel 1 = [-1, -1, 1, 1] (std 1).
Z = np.array([[[1, 2], [3, 4]], [[-1, -1], [1, 1]]], np.float32)


def test_channel_stats_by_hand():
    stats = latents.channel_stats(Z)
    np.testing.assert_allclose(stats["mean"], [2.5, 0.0])
    np.testing.assert_allclose(stats["std"], [np.sqrt(1.25), 1.0], rtol=1e-6)
    np.testing.assert_array_equal(stats["min"], [1, -1])
    np.testing.assert_array_equal(stats["max"], [4, 1])


def test_zero_touches_only_its_channel_and_not_the_input():
    out = latents.edit_channel(Z, 1, "zero")
    np.testing.assert_array_equal(out[1], 0)
    np.testing.assert_array_equal(out[0], Z[0])
    assert Z[1, 0, 0] == -1  # the cached input is never edited in place


def test_scale():
    out = latents.edit_channel(Z, 0, "scale", -2.0)
    np.testing.assert_array_equal(out[0], [[-2, -4], [-6, -8]])
    np.testing.assert_array_equal(out[1], Z[1])


def test_shift_is_in_units_of_the_channels_own_std():
    out = latents.edit_channel(Z, 1, "shift", 0.5)  # channel 1's std is 1: +0.5
    np.testing.assert_allclose(out[1], [[-0.5, -0.5], [1.5, 1.5]])
    out = latents.edit_channel(Z, 0, "shift", 2.0)  # channel 0's std is sqrt(1.25)
    np.testing.assert_allclose(out[0], Z[0] + 2 * np.sqrt(1.25), rtol=1e-6)


def test_unknown_op_is_refused():
    with pytest.raises(ValueError, match="unknown latent edit"):
        latents.edit_channel(Z, 0, "rotate", 1.0)


@pytest.mark.parametrize("op,amount,changed", [("scale", 1.0, False), ("scale", 0.5, True), ("shift", 0.0, False),
                                               ("shift", -1.0, True), ("zero", 0.0, True)])
def test_changes(op, amount, changed):
    assert latents.changes(op, amount) is changed
    assert (not np.array_equal(latents.edit_channel(Z, 0, op, amount), Z)) is changed


def test_noise_is_seeded_and_scaled():
    a = latents.add_noise(Z, 0.5, scale=2.0, seed=3)
    b = latents.add_noise(Z, 0.5, scale=2.0, seed=3)
    np.testing.assert_array_equal(a, b)
    expected = Z + np.random.default_rng(3).normal(size=Z.shape).astype(np.float32) * 1.0  # sigma × scale = 1
    np.testing.assert_allclose(a, expected, rtol=1e-6)
    assert a.dtype == np.float32
    assert latents.add_noise(Z, 0.0, scale=2.0) is Z


def test_interpolate_by_hand():
    other = np.zeros_like(Z)
    np.testing.assert_allclose(latents.interpolate(Z, other, 0.25), 0.75 * Z)
    np.testing.assert_array_equal(latents.interpolate(Z, other, 0.0), Z)
    np.testing.assert_array_equal(latents.interpolate(Z, other, 1.0), other)
    with pytest.raises(ValueError, match="shapes"):
        latents.interpolate(Z, Z[:1], 0.5)
