"""Mixup and CutMix: targets follow the pixels exactly."""

from __future__ import annotations

import numpy as np

from rnn_jax.data.mixing import mix_batch


def _batch(n=8, side=10):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, side, side, 1), dtype=np.uint8), rng.integers(0, 3, n)


def test_no_mixing_gives_one_hot_targets_and_the_same_pixels():
    images, labels = _batch()
    x, targets, mix = mix_batch(images, labels, 3, np.random.default_rng(1))
    assert mix is None and x.dtype == np.float32
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(targets.argmax(1), labels)


def test_mixup_mixes_pixels_and_targets_with_one_weight():
    images, labels = _batch()
    x, targets, mix = mix_batch(images, labels, 3, np.random.default_rng(1), mixup=0.4)
    expected = mix.lam * images.astype(np.float32) + (1 - mix.lam) * images[mix.perm].astype(np.float32)
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    one_hot = np.eye(3)[labels]
    np.testing.assert_allclose(targets, mix.lam * one_hot + (1 - mix.lam) * one_hot[mix.perm], rtol=1e-6)
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)


def test_cutmix_weight_is_the_area_really_kept():
    images, labels = _batch(n=16, side=12)
    for seed in range(10):
        x, targets, mix = mix_batch(images, labels, 3, np.random.default_rng(seed), cutmix=1.0)
        kept = np.mean(x == images.astype(np.float32), axis=(1, 2, 3))
        pasted = np.mean(x == images[mix.perm].astype(np.float32), axis=(1, 2, 3))
        # rows whose pixels differ from their partner's: the kept fraction is 1 - pasted area
        differs = ~np.all(images == images[mix.perm], axis=(1, 2, 3))
        np.testing.assert_allclose((1 - pasted)[differs], mix.lam, atol=0.05)
        assert np.all(kept[differs] >= mix.lam - 0.05)
        np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)
