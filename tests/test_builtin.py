"""Built-in drawn gestures: deterministic, balanced, HaGRID class names, announces itself as demo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rnn_jax.data.builtin import GESTURES, make_builtin_gestures, save_grid
from rnn_jax.errors import DataError

HAGRID_NAMES = {"call", "dislike", "fist", "four", "like", "mute", "ok", "one", "palm", "peace",
                "peace_inverted", "rock", "stop", "stop_inverted", "three", "three2", "two_up",
                "two_up_inverted", "no_gesture"}


def test_shapes_splits_and_balance():
    ds = make_builtin_gestures(image_size=24, per_class=20, seed=0)
    assert ds.class_names == GESTURES and set(GESTURES) <= HAGRID_NAMES | {"no_gesture"}
    assert ds.image_shape == (24, 24, 3) and ds.train.images.dtype == np.uint8
    assert [len(s) for s in ds.splits().values()] == [14 * len(GESTURES), 3 * len(GESTURES), 3 * len(GESTURES)]
    for split in ds.splits().values():
        assert np.bincount(split.labels).tolist() == [len(split) // len(GESTURES)] * len(GESTURES)
    assert "download_hagrid.py" in ds.notes["demo"]


def test_deterministic_for_a_seed():
    a = make_builtin_gestures(16, per_class=10, seed=5)
    b = make_builtin_gestures(16, per_class=10, seed=5)
    c = make_builtin_gestures(16, per_class=10, seed=6)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert np.array_equal(a.test.images, b.test.images)


def test_images_vary_and_grey_works():
    ds = make_builtin_gestures(32, per_class=10, seed=1, channels=1)
    assert ds.image_shape == (32, 32, 1)
    imgs = ds.train.images.astype(np.float32)
    assert imgs.std(axis=0).mean() > 20  # backgrounds, poses and tones differ
    assert len({img.tobytes() for img in ds.train.images}) == len(ds.train)


def test_grid_png(tmp_path):
    ds = make_builtin_gestures(16, per_class=10)
    out = tmp_path / "grid.png"
    save_grid(ds, str(out), per_class=4, scale=2)
    img = cv2.imread(str(out))
    assert img.shape == (len(GESTURES) * 16 * 2, 4 * 16 * 2, 3)


def test_bad_arguments():
    with pytest.raises(DataError, match="too small"):
        make_builtin_gestures(image_size=4)
    with pytest.raises(DataError, match="too few"):
        make_builtin_gestures(per_class=2)
