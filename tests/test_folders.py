"""Plain class folders: layouts, natural class order, splits, broken files, fixable errors."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from rnn_jax.data.folders import load_class_folders, natural_key, stratified_split
from rnn_jax.errors import DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DIGITS = SHARED / "sign-language-digits"


def write_image(path: Path, value: int = 128, size: tuple[int, int] = (24, 20)) -> Path:
    """A small flat image (any extension cv2 can write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((size[1], size[0], 3), value, np.uint8)
    ext = path.suffix.lower()
    ok, buf = cv2.imencode(".jpg" if ext in (".jpg", ".jpeg") else ext, img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def make_tree(root: Path, splits: dict[str, int], classes=("2", "10", "1"), ext=".jpg") -> Path:
    for split, n in splits.items():
        for c in classes:
            for i in range(n):
                base = root / split if split else root
                write_image(base / c / f"img_{i}{ext}", value=20 * int(c) % 250 if c.isdigit() else 99)
    return root


def load(root: Path, tmp_path: Path, **kw):
    kw.setdefault("progress", False)
    return load_class_folders(root, 16, cache_dir=tmp_path / "cache", **kw)


def test_natural_sort_and_train_val_layout(tmp_path):
    root = make_tree(tmp_path / "d", {"train": 3, "val": 2})
    ds = load(root, tmp_path)
    assert ds.class_names == ("1", "2", "10")
    assert sorted(["b10", "B2", "a"], key=natural_key) == ["a", "B2", "b10"]
    assert ds.image_shape == (16, 16, 3)
    assert len(ds.train) == 9 and len(ds.val) == 6 and ds.test is None
    assert ds.train.images.dtype == np.uint8 and ds.train.labels.dtype == np.int32
    assert np.bincount(ds.train.labels).tolist() == [3, 3, 3]
    assert ds.notes["skipped"]["count"] == 0
    assert ds.notes["layout"] == "folders/train-val"
    # labels follow the folders: class "10" images are the ones with value 200
    ten = ds.class_names.index("10")
    assert np.all(np.abs(ds.train.images[ds.train.labels == ten][:, 8, 8].astype(int) - 200) < 4)


def test_any_extension_case_and_grey(tmp_path):
    root = tmp_path / "d"
    for split in ("train", "val"):
        for c, ext in (("a", ".JPG"), ("b", ".Png"), ("c", ".jpeg"), ("d", ".bmp"), ("e", ".webp")):
            write_image(root / split / c / f"x{ext}")
            write_image(root / split / c / f"y{ext.lower()}")
        (root / split / "a" / "notes.txt").write_text("not an image")
    ds = load(root, tmp_path, channels=1)
    assert ds.class_names == ("a", "b", "c", "d", "e")
    assert ds.image_shape == (16, 16, 1) and len(ds.train) == 10


def test_only_test_folder_carves_val_from_train(tmp_path):
    root = make_tree(tmp_path / "d", {"train": 10, "test": 2})
    ds = load(root, tmp_path, val_fraction=0.2, seed=3)
    assert len(ds.test) == 6 and len(ds.val) == 6 and len(ds.train) == 24
    assert np.bincount(ds.val.labels).tolist() == [2, 2, 2]
    assert "carved" in ds.notes["split"]


def test_per_class_layout_split_is_stratified_and_seeded(tmp_path):
    root = make_tree(tmp_path / "d", {"": 20})
    a = load(root, tmp_path, val_fraction=0.25, test_fraction=0.25, seed=1)
    b = load(root, tmp_path, val_fraction=0.25, test_fraction=0.25, seed=1)
    assert a.notes["layout"] == "folders/per-class"
    assert [len(s) for s in a.splits().values()] == [30, 15, 15]
    for split in a.splits().values():
        assert np.bincount(split.labels).tolist() == [len(split) // 3] * 3
    assert np.array_equal(a.val.labels, b.val.labels)
    parts = stratified_split(np.repeat(np.arange(3), 20), [0.25, 0.25], seed=1)
    assert len(set(np.concatenate(parts).tolist())) == 60  # no example in two splits


def test_letterbox_keeps_aspect(tmp_path):
    root = tmp_path / "d"
    for split in ("train", "val"):
        for c in ("a", "b"):
            write_image(root / split / c / "wide.png", value=255, size=(80, 40))
    ds = load(root, tmp_path)
    img = ds.train.images[0]
    assert img[0].max() == 0 and img[-1].max() == 0  # padded bars above and below
    assert img[8].min() > 250


def test_corrupt_truncated_and_empty_files_are_skipped(tmp_path):
    root = make_tree(tmp_path / "d", {"train": 4, "val": 2})
    (root / "train" / "1" / "garbage.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    (root / "train" / "2" / "empty.png").write_bytes(b"")
    good = write_image(tmp_path / "x.jpg", size=(64, 64)).read_bytes()
    (root / "train" / "10" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    ds = load(root, tmp_path)
    skipped = ds.notes["skipped"]
    assert skipped["count"] == 3 and len(ds.train) == 12
    assert any("garbage.jpg" in e for e in skipped["examples"])
    assert any("truncated.jpg" in e for e in skipped["examples"])


@pytest.mark.parametrize("case, pattern", [
    ("missing", r"does not exist"),
    ("empty_class", r"class folder .*empty_class.* has no images"),
    ("no_images", r"has no class folders"),
    ("differ", r"differ .*missing in val: 10"),
])
def test_errors_are_one_fixable_sentence(tmp_path, case, pattern):
    root = tmp_path / "d"
    if case == "empty_class":
        make_tree(root, {"train": 2, "val": 1})
        (root / "train" / "empty_class").mkdir()
        (root / "val" / "empty_class").mkdir()
    elif case == "no_images":
        root.mkdir()
        (root / "readme.txt").write_text("hi")
    elif case == "differ":
        make_tree(root, {"train": 2})
        make_tree(root, {"val": 1}, classes=("1", "2"))
    with pytest.raises(DataError, match=pattern) as info:
        load(root, tmp_path)
    assert "\n" not in str(info.value)


def test_class_left_without_readable_training_image_is_an_error(tmp_path):
    root = make_tree(tmp_path / "d", {"train": 1, "val": 1}, classes=("a", "b"))
    (root / "train" / "b" / "img_0.jpg").write_bytes(b"broken")
    with pytest.raises(DataError, match="no readable training image for class 'b'"):
        load(root, tmp_path)


@pytest.mark.shared
@pytest.mark.skipif(not DIGITS.is_dir(), reason=f"real data not present at {DIGITS} "
                    "(it lives in ../shared/data beside the project)")
def test_sign_language_digits(tmp_path):
    ds = load_class_folders(DIGITS, 64, cache_dir=tmp_path / "cache", progress=False)
    assert ds.class_names == tuple(str(d) for d in range(10))
    assert ds.image_shape == (64, 64, 3) and ds.test is None
    people = {}
    for split, data in (("train", ds.train), ("val", ds.val)):
        files = sorted((DIGITS / split).glob("*/*"))
        assert len(data) == len(files)  # the given split is kept, nothing skipped
        counts = [len(list((DIGITS / split / c).iterdir())) for c in ds.class_names]
        assert np.bincount(data.labels, minlength=10).tolist() == counts
        # each person took 10 consecutive photos, digits 0..9: IMG_<n> - digit = the person
        people[split] = {int(re.search(r"(\d+)", f.stem).group(1)) - int(f.parent.name)
                         for f in files}
    assert not people["train"] & people["val"]  # person-disjoint, which is why it is kept
    assert ds.notes["skipped"]["count"] == 0
    again = load_class_folders(DIGITS, 64, cache_dir=tmp_path / "cache", progress=False)
    assert again.notes["cache"]["reused"] and np.array_equal(again.val.images, ds.val.images)


@pytest.mark.shared
@pytest.mark.parametrize("channels", [3, 1], ids=["rgb", "grey"])
def test_training_decode_and_live_preprocessing_give_the_same_pixels_on_real_photos(tmp_path, channels):
    """Real HaGRID photos (683x512 / 512x683, letterboxed) decoded for training, and the same files
    played through the live loop's image source and the runtime's preprocessing: the same pixels."""
    import shutil

    from rnn_jax.live.sources import open_source
    from rnn_jax.runtime import Predictor
    from tests.conftest import shared_data
    from tests.onnx_fixtures import make_fixture_info, write_fixture_onnx

    photos = shared_data("hagrid-sample", "photos_train")
    root = tmp_path / "photos"
    shapes = set()
    for gesture in ("call", "like"):
        for split, photo in zip(("train", "val"), sorted((photos / gesture).iterdir())[:2]):
            (root / split / gesture).mkdir(parents=True)
            shutil.copy(photo, root / split / gesture / photo.name)
            shapes.add(cv2.imread(str(photo)).shape[:2])
    assert any(h != w for h, w in shapes)  # not square: the letterbox is exercised
    data = load_class_folders(root, 64, "full", channels=channels, cache_dir=tmp_path / "cache", progress=False)
    info = make_fixture_info(class_names=("call", "like"), input_size=64, channels="RGB" if channels == 3 else "GRAY")
    predictor = Predictor.load(write_fixture_onnx(tmp_path / "m.onnx", size=64, channels=channels, num_classes=2,
                                                  info=info))
    for split in (data.train, data.val):
        assert len(split) == 2
        for image, label in zip(split.images, split.labels):
            folder = root / ("train" if split is data.train else "val") / data.class_names[label]
            with open_source(folder) as source:  # what --source <folder> plays
                frame = source.read()
            live = predictor.preprocess(frame, "bgr")[0]
            assert live.shape == image.shape == (64, 64, channels) and live.dtype == image.dtype == np.uint8
            np.testing.assert_array_equal(live, image)
