"""The training pipeline reads several batches per grain element; the batches must not change."""

from __future__ import annotations

import numpy as np

from rnn_jax.data.pipeline import train_batches
from rnn_jax.data.types import Split


def test_reading_several_batches_at_once_keeps_the_batches():
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 255, (101, 6, 6, 3)).astype(np.uint8), rng.integers(0, 4, 101).astype(np.int32))
    one = list(train_batches(split, 8, seed=5, augment="none", images_per_read=8))
    many = list(train_batches(split, 8, seed=5, augment="none", images_per_read=64))
    assert len(one) == len(many) == 101 // 8  # the last partial batch is dropped either way
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a["index"], b["index"])
        np.testing.assert_array_equal(b["images"], split.images[b["index"]])
        np.testing.assert_array_equal(b["labels"], split.labels[b["index"]])
        assert np.all(np.diff(b["index"]) > 0)  # sorted within the batch
    covered = np.concatenate([b["index"] for b in many])
    assert len(np.unique(covered)) == len(covered) == 12 * 8
    augmented = list(train_batches(split, 8, seed=5, augment="basic", images_per_read=64))
    assert [b["images"].shape for b in augmented] == [(8, 6, 6, 3)] * 12
