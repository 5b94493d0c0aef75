"""Streamed images (rnn_jax/data/stream.py) equal the decoded cache pixel for pixel, batch for batch.

Real sample photos (skipped without ../shared) and a tiny generated HaGRID v2 fixture; grain's
worker processes are started only where the test is about them (each start costs seconds).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import grain
import numpy as np
import pytest

from rnn_jax.data.cache import ImageItem, SplitSpec, load_decoded
from rnn_jax.data.hagrid.images import load_hagrid
from rnn_jax.data.hagrid.parts_images import decode_part_item
from rnn_jax.data.pipeline import eval_batches, train_batches
from rnn_jax.data.stream import StreamedImages, choose_storage, load_images
from rnn_jax.data.types import Split
from rnn_jax.errors import ConfigError, DataError
from tests.conftest import shared_data
from tests.test_hagrid import make_v2


def _sample_items(per_gesture: int = 2) -> tuple[list[ImageItem], list[ImageItem]]:
    """A few annotated val photos (their gesture box) and a few tight train crops of the sample."""
    root = shared_data("hagrid-sample")
    photos = []
    for gesture in ("like", "palm"):
        anns = json.loads((root / "hagrid_annotations" / "val" / f"{gesture}.json").read_text())
        for image_id, ann in list(anns.items())[:per_gesture]:
            path = root / "hagrid_dataset" / gesture / f"{image_id}.jpg"
            photos.append(ImageItem(path, tuple(ann["bboxes"][0]), 1.5))
    crops = [ImageItem(p, (0.25, 0.2, 0.5, 0.6), 2.0)
             for p in sorted((root / "crops_train" / "like").glob("*.jpg"))[:per_gesture]]
    return photos, crops


@pytest.mark.parametrize("crop_mode,size,channels,boxes", [("full", 48, 3, False), ("hand", 40, 3, True),
                                                           ("hand", 24, 1, True)])
def test_real_photos_stream_as_the_cache_decodes_them(tmp_path: Path, crop_mode, size, channels, boxes) -> None:
    photos, _ = _sample_items()
    items = photos if boxes else [ImageItem(it.path) for it in photos]
    cached = load_decoded("real", {"x": SplitSpec(items, size)}, crop_mode=crop_mode, channels=channels,
                          cache_dir=tmp_path, progress=False).images["x"]
    streamed = StreamedImages.from_items(items, size, crop_mode, channels, workers=0)
    assert streamed.shape == cached.shape and len(streamed) == len(items)
    np.testing.assert_array_equal(streamed[np.arange(len(items))], cached)
    np.testing.assert_array_equal(streamed[1], cached[1])
    np.testing.assert_array_equal(grain.MapDataset.source(streamed)[2], cached[2])  # a grain data source
    np.testing.assert_array_equal(np.asarray(streamed), cached)


def test_real_crops_stream_through_worker_processes_as_the_cache_decodes_them(tmp_path: Path) -> None:
    """The parts' own decoder (tight crops padded, then cut) in 2 grain worker processes."""
    _, crops = _sample_items(per_gesture=3)
    cached = load_decoded("real", {"x": SplitSpec(crops, 32)}, crop_mode="hand", cache_dir=tmp_path,
                          progress=False, decoder=decode_part_item).images["x"]
    streamed = StreamedImages.from_items(crops, 32, "hand", 3, decoder=decode_part_item, workers=2)
    got = [(batch.copy(), valid) for batch, valid in eval_batches(streamed, 2)]
    want = [(batch.copy(), valid) for batch, valid in eval_batches(cached, 2)]
    assert [v for _, v in got] == [v for _, v in want] == [2, 1]
    for (a, _), (b, _) in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def _fixture(tmp_path: Path, storage: str, crop: str = "hand"):
    return load_hagrid(make_v2(tmp_path / "v2") if not (tmp_path / "v2").exists() else tmp_path / "v2", 16,
                       crop=crop, cache_dir=tmp_path / "cache", progress=False, storage=storage,
                       no_gesture=crop == "hand")


@pytest.mark.parametrize("crop", ["hand", "full"])
def test_a_streamed_hagrid_dataset_equals_the_cached_one(tmp_path: Path, crop: str, capsys) -> None:
    cached, streamed = _fixture(tmp_path, "cache", crop), _fixture(tmp_path, "stream", crop)
    said = capsys.readouterr().out
    assert "images: decoded cache" in said and "images: streamed from the JPEGs" in said
    assert cached.notes["images"]["storage"] == "cache" and streamed.notes["images"]["storage"] == "stream"
    assert isinstance(streamed.train.images, StreamedImages) and not isinstance(cached.train.images, StreamedImages)
    assert cached.class_names == streamed.class_names and cached.fingerprint() == streamed.fingerprint()
    for name, split in cached.splits().items():
        other = streamed.splits()[name]
        np.testing.assert_array_equal(split.labels, other.labels)
        np.testing.assert_array_equal(np.asarray(other.images), split.images)


def test_training_batches_are_the_same_streamed_through_workers(tmp_path: Path) -> None:
    cached, streamed = _fixture(tmp_path, "cache"), _fixture(tmp_path, "stream")
    assert streamed.train.images.workers >= 1  # one per core by default
    images = dataclasses.replace(streamed.train.images, workers=2)
    kw = dict(batch_size=4, seed=7, augment="strong", train_view=cached.train_view)
    want = list(train_batches(cached.train, **kw))
    got = list(train_batches(Split(images, streamed.train.labels), **kw))
    assert len(got) == len(want) == len(cached.train) // 4
    for a, b in zip(got, want, strict=True):
        for key in ("index", "labels", "images"):
            np.testing.assert_array_equal(a[key], b[key])


def test_unreadable_files_are_left_out_and_counted_like_the_cache_does(tmp_path: Path) -> None:
    root = make_v2(tmp_path / "v2")
    victims = sorted((root / "hagrid_dataset" / "like").glob("*.jpg"))[:2]
    victims[0].write_bytes(victims[0].read_bytes()[:200])  # truncated
    victims[1].write_bytes(b"")  # empty
    cached, streamed = _fixture(tmp_path, "cache"), _fixture(tmp_path, "stream")
    assert streamed.notes["skipped"]["count"] == cached.notes["skipped"]["count"] == 4  # 2 photos x 2 hands
    for name, split in cached.splits().items():
        np.testing.assert_array_equal(streamed.splits()[name].labels, split.labels)
        np.testing.assert_array_equal(np.asarray(streamed.splits()[name].images), split.images)


def test_a_file_that_fails_to_decode_in_a_worker_is_a_data_error(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    import cv2

    cv2.imwrite(str(good), np.full((20, 30, 3), 90, np.uint8))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a picture")  # passes the header/tail check (not a JPEG), fails to decode
    images = StreamedImages.from_items([ImageItem(good), ImageItem(bad)], 8, "full", 3, workers=1)
    with pytest.raises(DataError, match="bad.jpg"):
        list(train_batches(Split(images, np.zeros(2, np.int32)), 1, seed=0, images_per_read=1))


def test_auto_caches_what_fits_and_streams_the_rest(tmp_path: Path) -> None:
    gib = 2**30
    assert choose_storage("auto", 3 * gib, tmp_path, memory=16 * gib, free=100 * gib)[0] == "cache"
    chosen, why = choose_storage("auto", 150 * gib, tmp_path, memory=128 * gib, free=1000 * gib)
    assert chosen == "stream" and "RAM" in why
    chosen, why = choose_storage("auto", 10 * gib, tmp_path, memory=128 * gib, free=15 * gib)
    assert chosen == "stream" and "free disk" in why
    assert choose_storage("cache", 150 * gib, tmp_path, memory=1, free=1)[0] == "cache"
    with pytest.raises(ConfigError):
        choose_storage("memory", 1, tmp_path)


def test_auto_reuses_a_decoded_cache_even_when_it_would_stream(tmp_path: Path, monkeypatch) -> None:
    import rnn_jax.data.stream as stream

    photo = tmp_path / "a.jpg"
    import cv2

    cv2.imwrite(str(photo), np.full((20, 30, 3), 90, np.uint8))
    splits = {"train": SplitSpec([ImageItem(photo)], 8)}
    monkeypatch.setattr(stream, "_memory_bytes", lambda: 0)  # nothing fits: auto streams
    assert load_images("t", splits, cache_dir=tmp_path / "c", announce=False).storage == "stream"
    load_images("t", splits, storage="cache", cache_dir=tmp_path / "c", announce=False)
    again = load_images("t", splits, cache_dir=tmp_path / "c", announce=False)
    assert again.storage == "cache" and "already decoded" in again.why


@pytest.mark.slow
def test_the_image_family_trains_through_the_stream_end_to_end(tmp_path: Path, monkeypatch, capsys) -> None:
    from experiments import hagrid

    monkeypatch.setenv("RNN_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RNN_JAX_STREAM_WORKERS", "2")
    root = make_v2(tmp_path / "v2")
    hagrid.main(["--data", str(root), "--family", "image", "--image-storage", "stream", "--crop", "hand",
                 "--model", "cnn", "--size", "tiny", "--image-size", "16", "--gens", "1", "--epochs", "1",
                 "--batch-size", "8", "--no-progress", "--out", str(tmp_path / "run")])
    assert "images: streamed from the JPEGs by 2 grain worker processes" in capsys.readouterr().out
    record = json.loads((tmp_path / "run" / "lineage.json").read_text())
    assert record["data_spec"]["image_storage"] == "stream"
    assert record["generations"][0]["status"] == "done"
    assert not list((tmp_path / "cache").glob("hagrid-*/*.npy"))  # no decoded arrays on disk
