"""The /vision result cache: bounded by bytes (not entries), attention kept as float16 (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

from components.vision import cache
from encoderscope import settings, vision
from tests import vision_fixtures as vf


def test_byte_lru_evicts_by_bytes_oldest_first():
    # Bug: a cache bounded by entries: one panorama's 600 MB result and ninety small ones all kept.
    store = cache.ByteLRU(lambda: 1_000)
    computed = []

    def make(n):
        computed.append(n)
        return np.zeros(n, np.uint8)

    store.get("a", lambda: make(400))
    store.get("b", lambda: make(400))
    store.get("a", lambda: make(400))  # a hit: "a" becomes the most recent, nothing computed
    assert computed == [400, 400]
    store.get("c", lambda: make(400))  # 1,200 bytes > 1,000: the least recent ("b") goes
    assert list(store.items) == ["a", "c"] and store.nbytes == 800
    store.get("big", lambda: make(900))  # evicts both older ones
    assert list(store.items) == ["big"] and store.nbytes <= 1_000
    huge = store.get("huge", lambda: make(5_000))  # larger than the budget: returned, never kept
    assert huge.nbytes == 5_000 and "huge" not in store.items and "big" in store.items


def test_nbytes_counts_the_arrays_of_an_image_result(tmp_path):
    enc = vision.load_image_encoder(str(vf.tiny_vit(tmp_path / "vit")))
    views = cache._image_views(enc, vf.encoded(vf.photo(48, 32)), False, 1_024)
    res = views.res
    floor = res.weights.nbytes + res.features.nbytes + res.hidden.nbytes + views.rollout.weights.nbytes
    floor += views.thumb.nbytes + len(views.png) + len(views.picture)
    assert floor <= cache.nbytes(views) <= floor + 50_000  # plus the pictures themselves and small arrays


def test_cached_attention_is_float16_and_its_statistics_come_from_float32(tmp_path):
    # Bugs: float32 kept (twice the bytes), or the distances/rollout computed after rounding to float16.
    enc = vision.load_image_encoder(str(vf.tiny_vit(tmp_path / "vit")))
    data = vf.encoded(vf.photo(48, 32))
    views = cache._image_views(enc, data, False, 1_024)
    full = vision.image_attention(enc, data)
    assert views.res.weights.dtype == np.float16
    np.testing.assert_allclose(views.res.weights, full.weights, rtol=2e-3, atol=1e-6)
    np.testing.assert_array_equal(views.distance, vision.attention_distance(full))
    assert views.rollout.weights.dtype == np.float32


def test_vision_cache_budget_setting():
    assert settings.load({}).vision_cache_mb == 1_024
    assert settings.load({"ENCODERSCOPE_PUBLIC": "1"}).vision_cache_mb < 1_024
    assert settings.load({"ENCODERSCOPE_VISION_CACHE_MB": "64"}).vision_cache_mb == 64
    with pytest.raises(ValueError, match="ENCODERSCOPE_MAX_IMAGE_PATCHES"):
        settings.load({"ENCODERSCOPE_MAX_IMAGE_PATCHES": "many"})
