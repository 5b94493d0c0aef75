"""The training pipeline reads several batches per grain element, or streamed JPEGs; the batches must not change."""

from __future__ import annotations

import numpy as np

from rnn_jax.data.pipeline import eval_batches, train_batches
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


def _streamed(tmp_path, n: int = 11, workers: int = 0):
    """n small PNG files (lossless) as streamed images: workers=0 reads them in threads (no processes)."""
    import cv2

    from rnn_jax.data.cache import ImageItem
    from rnn_jax.data.stream import StreamedImages

    rng = np.random.default_rng(1)
    items = []
    for i in range(n):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (9, 7, 3)).astype(np.uint8))
        items.append(ImageItem(path))
    return StreamedImages.from_items(items, 6, "full", 3, workers=workers)


def test_streamed_splits_give_the_batches_of_their_decoded_arrays(tmp_path):
    import grain

    streamed = _streamed(tmp_path)
    arrays = np.asarray(streamed)
    labels = np.arange(len(arrays), dtype=np.int32) % 3
    for shard in (None, grain.sharding.ShardOptions(shard_index=1, shard_count=2)):
        want = list(train_batches(Split(arrays, labels), 4, seed=3, shard=shard))
        got = list(train_batches(Split(streamed, labels), 4, seed=3, shard=shard))
        assert len(got) == len(want) == 2
        for a, b in zip(got, want, strict=True):
            for key in ("index", "labels", "images"):
                np.testing.assert_array_equal(a[key], b[key])
    for rows in (None, slice(2, 4)):  # a process's rows of every padded global batch
        want = [(b.copy(), v) for b, v in eval_batches(arrays, 4, rows=rows)]
        got = [(b.copy(), v) for b, v in eval_batches(streamed, 4, rows=rows)]
        assert [v for _, v in got] == [v for _, v in want] == [4, 4, 3]
        for (a, _), (b, _) in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
