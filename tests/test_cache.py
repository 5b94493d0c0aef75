"""Decoded-image cache: reused when valid, rebuilt when stale or damaged, written atomically."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rnn_jax.data import cache
from rnn_jax.data.cache import ImageItem, SplitSpec, decode_item, load_decoded
from rnn_jax.data.folders import load_class_folders
from rnn_jax.errors import DataError


def write_jpg(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((20, 30, 3), value, np.uint8))
    return path


class CountingDecoder:
    """Wraps the real decoder and counts calls: a reused cache must make none."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, item, size, crop_mode, channels):
        self.calls += 1
        return decode_item(item, size, crop_mode, channels)


@pytest.fixture
def files(tmp_path):
    return [write_jpg(tmp_path / "img" / f"{i}.jpg", 10 * i) for i in range(6)]


def specs(paths, size=8):
    return {"train": SplitSpec([ImageItem(p) for p in paths[:4]], size),
            "val": SplitSpec([ImageItem(p) for p in paths[4:]], size)}


def run(files, tmp_path, decoder=None, **kw):
    decoder = decoder or CountingDecoder()
    out = load_decoded("t", specs(files, kw.pop("size", 8)), cache_dir=tmp_path / "c",
                       progress=False, decoder=decoder, **kw)
    return out, decoder


def test_second_load_decodes_nothing_and_returns_memmaps(files, tmp_path):
    first, d1 = run(files, tmp_path)
    second, d2 = run(files, tmp_path)
    assert d1.calls == 6 and not first.reused and first.decoded == 6
    assert d2.calls == 0 and second.reused and second.decoded == 0
    assert isinstance(second.images["train"], np.memmap)
    assert second.images["train"].shape == (4, 8, 8, 3)
    assert np.array_equal(first.images["val"], second.images["val"])
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".tmp-")]


def test_modified_file_makes_the_cache_stale(files, tmp_path):
    run(files, tmp_path)
    write_jpg(files[1], 200)
    os.utime(files[1], ns=(time.time_ns(), time.time_ns() + 10**9))
    again, dec = run(files, tmp_path)
    assert dec.calls == 6 and not again.reused
    assert abs(int(again.images["train"][1, 4, 4, 0]) - 200) < 4
    assert len(list((tmp_path / "c").iterdir())) == 1  # rebuilt in place, no orphan slot


@pytest.mark.parametrize("damage", ["delete_array", "wrong_shape", "bad_manifest", "other_key"])
def test_damaged_cache_is_rebuilt_not_reused(files, tmp_path, damage):
    first, _ = run(files, tmp_path)
    expected = np.array(first.images["train"])  # a copy: the damage below rewrites the file
    slot = first.path
    if damage == "delete_array":
        (slot / "val.npy").unlink()
    elif damage == "wrong_shape":
        np.save(slot / "train.npy", np.zeros((4, 9, 9, 3), np.uint8))
    elif damage == "bad_manifest":
        (slot / "manifest.json").write_text("{not json")
    else:
        manifest = json.loads((slot / "manifest.json").read_text())
        manifest["key"] = "0" * 64
        (slot / "manifest.json").write_text(json.dumps(manifest))
    again, dec = run(files, tmp_path)
    assert dec.calls == 6 and not again.reused
    assert np.array_equal(again.images["train"], expected)


def test_parameters_get_their_own_slot(files, tmp_path):
    a, _ = run(files, tmp_path, size=8)
    b, _ = run(files, tmp_path, size=12)
    c, _ = run(files, tmp_path, size=8, channels=1)
    assert len({a.path, b.path, c.path}) == 3
    assert c.images["train"].shape == (4, 8, 8, 1)


def test_failures_are_listed_and_remembered(files, tmp_path):
    files[2].write_bytes(b"corrupt")
    first, _ = run(files, tmp_path)
    assert first.kept["train"].tolist() == [0, 1, 3]
    assert first.images["train"].shape[0] == 3
    assert len(first.failures) == 1 and "2.jpg" in first.failures[0][0]
    second, dec = run(files, tmp_path)
    assert dec.calls == 0 and second.failures == first.failures
    assert second.kept["train"].tolist() == [0, 1, 3]


def test_threaded_and_serial_decoding_agree(files, tmp_path):
    serial = load_decoded("s", specs(files), cache_dir=tmp_path / "a", progress=False, workers=1)
    threaded = load_decoded("s", specs(files), cache_dir=tmp_path / "b", progress=False, workers=2)
    for split in ("train", "val"):
        assert np.array_equal(serial.images[split], threaded.images[split])


def test_env_var_sets_the_default_location(files, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "env-cache"))
    out = load_decoded("t", specs(files), progress=False)
    assert out.path.parent == tmp_path / "env-cache"


def test_old_leftovers_of_killed_builds_are_removed(files, tmp_path):
    root = tmp_path / "c"
    old = root / ".tmp-x-killed"
    old.mkdir(parents=True)
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    fresh = root / ".tmp-y-running"
    fresh.mkdir()
    run(files, tmp_path)
    assert not old.exists() and fresh.exists()


def test_hand_box_crop_and_bad_crop_mode(tmp_path):
    img = np.zeros((40, 60, 3), np.uint8)
    img[10:20, 30:40] = 255
    path = tmp_path / "box.png"
    cv2.imwrite(str(path), img)
    crop = decode_item(ImageItem(path, (30 / 60, 10 / 40, 10 / 60, 10 / 40), 1.0), 10, "hand", 3)
    assert crop.min() > 240
    with pytest.raises(DataError, match="unknown crop mode"):
        load_decoded("t", {"train": SplitSpec([ImageItem(path)], 8)}, crop_mode="nope",
                     cache_dir=tmp_path / "c", progress=False)


def test_folder_loader_reports_cache_use(tmp_path):
    for split in ("train", "val"):
        for c in ("a", "b"):
            write_jpg(tmp_path / "d" / split / c / "x.jpg", 50)
    kw = dict(cache_dir=tmp_path / "c", progress=False)
    first = load_class_folders(tmp_path / "d", 8, **kw)
    second = load_class_folders(tmp_path / "d", 8, **kw)
    assert not first.notes["cache"]["reused"] and first.notes["cache"]["decoded"] == 4
    assert second.notes["cache"]["reused"] and second.notes["cache"]["decoded"] == 0
