"""HaGRID loaders on tiny generated trees in each real layout, with HaGRID's annotation schema.

Every photo is a flat background whose grey level encodes the person (user_id), with the
gesture box painted white and the no_gesture box painted green, so tests can see which
person an image came from and whether a hand crop landed on the annotated box.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rnn_jax.data.hagrid.images import load_hagrid
from rnn_jax.data.hagrid.layout import detect_hagrid_layout
from rnn_jax.data.hand_crops import center_context_crop, hand_train_size, random_context_crop
from rnn_jax.errors import DataError

W, H = 64, 48
GESTURES = ("like", "palm", "two_up")
LEVEL_STEP = 12


def level(user: int) -> int:
    return 20 + LEVEL_STEP * user


def gesture_box(i: int) -> list[float]:
    return [0.1 + 0.05 * (i % 5), 0.2 + 0.04 * (i % 4), 0.25, 0.3]


NO_GESTURE_BOX = [0.72, 0.55, 0.2, 0.25]


def write_photo(path: Path, user: int, box: list[float], other: list[float] | None) -> None:
    img = np.full((H, W, 3), level(user), np.uint8)  # RGB
    for b, colour in ((box, (255, 255, 255)), (other, (0, 255, 0))):
        if b is not None:
            x, y, w, h = b
            img[round(y * H) : round((y + h) * H), round(x * W) : round((x + w) * W)] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])


def entry(gesture: str, user: int, i: int, v2: bool) -> dict:
    boxes, labels = [gesture_box(i), NO_GESTURE_BOX], [gesture, "no_gesture"]
    ann = {"bboxes": boxes, "labels": labels, "user_id": f"user{user:02d}hash"}
    if v2:
        ann.update({"united_bbox": None, "united_label": None, "hand_landmarks": [[], []],
                    "meta": {"age": [30.5], "gender": ["female"], "race": ["White"]}})
    else:
        ann.update({"leading_hand": "right", "leading_conf": 1.0, "landmarks": [[], []]})
    return ann


def make_annotated(image_dir, ann_dir, gestures=GESTURES, users=range(8), per_user=1,
                   v2=False, write=True) -> dict[str, dict]:
    """One JSON per gesture; images ``image_dir(gesture)/<id>.jpg``. Returns the annotations."""
    all_anns = {}
    for g in gestures:
        anns = {}
        for u in users:
            for k in range(per_user):
                image_id = f"{g}-{u:02d}-{k}-0000-uuid"
                anns[image_id] = entry(g, u, u + k, v2)
                if write:
                    write_photo(image_dir(g) / f"{image_id}.jpg", u, anns[image_id]["bboxes"][0],
                                NO_GESTURE_BOX)
        ann_dir.mkdir(parents=True, exist_ok=True)
        (ann_dir / f"{g}.json").write_text(json.dumps(anns))
        all_anns[g] = anns
    return all_anns


def make_sample30k(root: Path, **kw) -> Path:
    outer = root / "hagrid-sample-30k-384p"
    make_annotated(lambda g: outer / "hagrid_30k" / f"train_val_{g}", outer / "ann_train_val", **kw)
    return root


def make_v1(root: Path) -> Path:
    make_annotated(lambda g: root / f"train_val_{g}", root / "ann_train_val", users=range(8))
    make_annotated(lambda g: root / "test" / g, root / "ann_test", users=range(8, 10))
    return root


def make_v2(root: Path, annotations_name="hagrid_annotations") -> Path:
    img = lambda g: root / "hagrid_dataset" / g  # noqa: E731
    ann = root / annotations_name
    make_annotated(img, ann / "train", users=range(0, 6), v2=True)
    make_annotated(img, ann / "val", users=range(6, 8), v2=True)
    make_annotated(img, ann / "test", users=range(8, 10), v2=True)
    # annotations for a gesture whose archive was not downloaded
    make_annotated(img, ann / "train", gestures=("call",), users=range(3), v2=True, write=False)
    return root


def load(root, tmp_path, **kw):
    kw.setdefault("progress", False)
    return load_hagrid(root, kw.pop("size", 32), cache_dir=tmp_path / "cache", **kw)


def users_of(images: np.ndarray) -> set[int]:
    """Recover the person from the background level (left column, away from the boxes)."""
    out = set()
    for img in images:
        col = img[:, 1].astype(int)
        bg = int(np.median(col[col > 5]))  # skip the letterbox bars
        out.add(round((bg - 20) / LEVEL_STEP))
    return out


def test_detect_layouts(tmp_path):
    assert detect_hagrid_layout(make_sample30k(tmp_path / "s")) == "sample30k"
    assert detect_hagrid_layout(tmp_path / "s" / "hagrid-sample-30k-384p") == "sample30k"
    assert detect_hagrid_layout(tmp_path / "s" / "hagrid-sample-30k-384p" / "hagrid_30k") == "sample30k"
    assert detect_hagrid_layout(make_v1(tmp_path / "v1")) == "v1"
    assert detect_hagrid_layout(make_v2(tmp_path / "v2")) == "v2"
    folders = tmp_path / "f" / "train" / "like"
    write_photo(folders / "a.jpg", 1, gesture_box(0), None)
    assert detect_hagrid_layout(tmp_path / "f") == "folders"
    with pytest.raises(DataError, match="does not exist"):
        detect_hagrid_layout(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    with pytest.raises(DataError, match="not a HaGRID layout"):
        detect_hagrid_layout(tmp_path / "junk")


@pytest.mark.parametrize("inner", [False, True])
def test_sample30k_full_frames_split_by_person(tmp_path, inner):
    root = make_sample30k(tmp_path / "s", users=range(10))
    ds = load(root / "hagrid-sample-30k-384p" if inner else root, tmp_path, seed=1)
    assert ds.class_names == GESTURES and ds.crop_mode == "full"
    assert ds.image_shape == (32, 32, 3)
    assert sum(len(s) for s in ds.splits().values()) == 30
    people = {k: users_of(s.images) for k, s in ds.splits().items()}
    assert not people["train"] & people["val"]
    assert not people["train"] & people["test"] and not people["val"] & people["test"]
    assert sum(ds.notes["users"].values()) == 10 and ds.notes["layout"] == "sample30k"
    assert "seeded split of people" in ds.notes["split"]
    other = load(root, tmp_path, seed=2)
    assert users_of(other.val.images) != people["val"] or users_of(other.test.images) != people["test"]


def test_v1_keeps_the_official_test_and_carves_val_by_person(tmp_path):
    ds = load(make_v1(tmp_path / "v1"), tmp_path)
    assert users_of(ds.test.images) == {8, 9}
    assert not users_of(ds.train.images) & users_of(ds.val.images)
    assert ds.notes["split"].startswith("person-disjoint by user_id: test as given")


def test_v2_uses_the_given_split_and_notes_absent_gestures(tmp_path):
    ds = load(make_v2(tmp_path / "v2"), tmp_path)
    assert ds.class_names == GESTURES  # "call" has annotations but no images on disk
    assert users_of(ds.train.images) == set(range(6))
    assert users_of(ds.val.images) == {6, 7} and users_of(ds.test.images) == {8, 9}
    assert "call" in ds.notes["gestures_without_images"]
    assert ds.notes["skipped"]["count"] == 0


@pytest.mark.parametrize("name", ["annotations", "annotations/hagrid_annotations"])
def test_v2_annotations_folder_names(tmp_path, name):
    ds = load(make_v2(tmp_path / "v2", annotations_name=name), tmp_path)
    assert len(ds.train) == 18 and ds.notes["layout"] == "v2"


def test_hand_crops_land_on_the_annotated_box(tmp_path):
    ds = load(make_v2(tmp_path / "v2"), tmp_path, crop="hand", size=24)
    assert ds.crop_mode == "hand" and ds.class_names == GESTURES
    assert ds.val.images.shape[1:] == (24, 24, 3)  # evaluation: exactly image_size at 1.5x
    stored = hand_train_size(24)
    assert ds.train.images.shape[1:] == (stored, stored, 3)  # training: more context
    c = slice(8, 16)  # the middle third is inside the box at scale 1.5
    assert ds.val.images[:, c, c].min() > 200
    view = center_context_crop(ds.train.images, 24)
    assert view.shape == ds.val.images.shape[:0] + (len(ds.train), 24, 24, 3)
    assert view[:, c, c].min() > 200
    assert ds.notes["hand_crop"]["train_stored_size"] == stored
    assert "random_context_crop" in ds.notes["hand_crop"]["pipeline"]
    rng = np.random.default_rng(0)
    aug = random_context_crop(ds.train.images[:4], 24, rng)
    assert aug.shape == (4, 24, 24, 3) and aug.dtype == np.uint8
    assert np.array_equal(aug, random_context_crop(ds.train.images[:4], 24, np.random.default_rng(0)))


def test_hand_crops_without_context(tmp_path):
    ds = load(make_v2(tmp_path / "v2"), tmp_path, crop="hand", size=24, train_context=False)
    assert ds.image_shape == (24, 24, 3)
    assert ds.train.images[:, 8:16, 8:16].min() > 200


def test_no_gesture_boxes_become_a_class_with_hand_crops(tmp_path):
    ds = load(make_sample30k(tmp_path / "s"), tmp_path, crop="hand", no_gesture=True, size=24)
    assert ds.class_names == ("like", "no_gesture", "palm", "two_up")
    ng = ds.class_names.index("no_gesture")
    crops = ds.val.images[ds.val.labels == ng][:, 8:16, 8:16].astype(int)
    assert len(crops) and crops[..., 1].min() > 200 and crops[..., 0].max() < 60  # green box
    gestures = ds.val.images[ds.val.labels != ng][:, 8:16, 8:16]
    assert gestures.min() > 200  # white box


def test_no_gesture_with_full_frames(tmp_path):
    with pytest.raises(DataError, match="use crop='hand'"):
        load(make_sample30k(tmp_path / "s"), tmp_path, no_gesture=True)
    root = make_v2(tmp_path / "v2")  # HaGRIDv2 has photos with no gesture at all
    img = lambda g: root / "hagrid_dataset" / g  # noqa: E731
    for split, users in (("train", range(6)), ("val", range(6, 8)), ("test", range(8, 10))):
        anns = {}
        for u in users:
            image_id = f"ng-{u:02d}-0000-uuid"
            anns[image_id] = {"bboxes": [NO_GESTURE_BOX], "labels": ["no_gesture"],
                              "user_id": f"user{u:02d}hash", "united_bbox": None,
                              "united_label": None}
            write_photo(img("no_gesture") / f"{image_id}.jpg", u, NO_GESTURE_BOX, None)
        (root / "hagrid_annotations" / split / "no_gesture.json").write_text(json.dumps(anns))
    ds = load(root, tmp_path, no_gesture=True)
    assert "no_gesture" in ds.class_names
    assert np.sum(ds.train.labels == ds.class_names.index("no_gesture")) == 6
    assert "only photos with no gesture" in ds.notes["no_gesture"]
    without = load(root, tmp_path)
    assert "no_gesture" not in without.class_names


def test_two_handed_gesture_uses_the_united_box(tmp_path):
    root = tmp_path / "v2"
    ann = {}
    for u in range(6):
        left, right = [0.05, 0.3, 0.2, 0.3], [0.6, 0.3, 0.2, 0.3]
        image_id = f"heart-{u}"
        ann[image_id] = {"bboxes": [left, right], "labels": ["hand_heart", "hand_heart"],
                         "united_bbox": [[0.05, 0.3, 0.75, 0.3]], "united_label": ["hand_heart"],
                         "user_id": f"u{u}"}
        write_photo(root / "hagrid_dataset" / "hand_heart" / f"{image_id}.jpg", u, left, None)
    (root / "hagrid_annotations" / "train").mkdir(parents=True)
    (root / "hagrid_annotations" / "train" / "hand_heart.json").write_text(json.dumps(ann))
    make_annotated(lambda g: root / "hagrid_dataset" / g, root / "hagrid_annotations" / "train",
                   gestures=("like",), users=range(6), v2=True)
    ds = load(root, tmp_path, crop="hand", size=24, train_context=False)
    heart = ds.train.images[ds.train.labels == ds.class_names.index("hand_heart")]
    # the united box spans both hands: its square crop shows the (painted) left hand near the
    # left edge and background in the middle (a crop of the first box would be white there)
    assert heart[:, 12, 5:8].min() > 200
    assert heart[:, 12, 11:13].max() < 150 and heart[:, 12, 16:20].max() < 150


def test_missing_and_corrupt_images_are_counted_not_fatal(tmp_path):
    root = make_sample30k(tmp_path / "s")
    folder = root / "hagrid-sample-30k-384p" / "hagrid_30k" / "train_val_like"
    files = sorted(folder.glob("*.jpg"))
    files[0].unlink()
    files[1].write_bytes(b"not a jpeg")
    files[2].write_bytes(files[3].read_bytes()[:200])
    ds = load(root, tmp_path)
    skipped = ds.notes["skipped"]
    assert skipped["count"] == 3 and sum(len(s) for s in ds.splits().values()) == 21
    assert skipped["by_reason"] == {"missing": 1, "unreadable": 1, "truncated": 1}
    assert any("missing on disk" in e for e in skipped["examples"])


def test_malformed_or_unmatched_annotations_are_clear_errors(tmp_path):
    root = make_sample30k(tmp_path / "s")
    ann = root / "hagrid-sample-30k-384p" / "ann_train_val" / "palm.json"
    ann.write_text('{"broken": ')
    with pytest.raises(DataError, match=r"palm\.json is not valid JSON"):
        load(root, tmp_path)
    ann.write_text("[1, 2, 3]")
    with pytest.raises(DataError, match="not a HaGRID annotation"):
        load(root, tmp_path)
    other = make_sample30k(tmp_path / "o", write=False)  # annotations only
    images = other / "hagrid-sample-30k-384p" / "hagrid_30k" / "train_val_like"
    write_photo(images / "unrelated-id.jpg", 1, gesture_box(0), None)
    with pytest.raises(DataError, match="match none of the"):
        load(other, tmp_path)


def test_cache_is_reused_for_hagrid(tmp_path):
    root = make_sample30k(tmp_path / "s")
    first = load(root, tmp_path, crop="hand")
    second = load(root, tmp_path, crop="hand")
    assert not first.notes["cache"]["reused"] and second.notes["cache"]["reused"]
    assert np.array_equal(first.train.images, second.train.images)


def test_plain_folders_are_delegated(tmp_path):
    for split in ("train", "test"):
        for g in ("like", "palm"):
            for i in range(4):
                write_photo(tmp_path / "f" / split / g / f"{i}.jpg", i, gesture_box(i), None)
    ds = load(tmp_path / "f", tmp_path)
    assert ds.class_names == ("like", "palm") and len(ds.test) == 8
    assert ds.notes["layout"] == "folders/train-test"


@pytest.mark.parametrize("argv,expected", [
    ([], ("demo", 16, 16)),  # built-in data: the demo preset, generation 0 as long as every student
    (["--epochs", "4"], ("demo", 4, None)),  # an explicit --epochs keeps students at twice that
    (["--preset", "cpu"], ("cpu", 10, None)),  # an explicit preset wins over the built-in data's
    (["--preset", "gpu", "--epochs", "2", "--student-epochs", "3"], ("gpu", 2, 3)),
])
def test_explicit_presets_and_flags_win_with_the_built_in_data(argv, expected):
    from experiments import hagrid as cli
    from rnn_jax.presets import PRESETS

    args = cli.build_parser().parse_args(argv)
    preset = cli.choose_preset(args, None)  # no data found: the built-in demo set
    cli.apply_preset(args, preset)
    assert preset == PRESETS[expected[0]]
    assert (args.epochs, args.student_epochs) == expected[1:]
    assert (args.model, args.image_size) == (preset.model, preset.image_size)


# ------------------------------------------------ --no-gesture on every root (issue 36 part 3)
@pytest.mark.parametrize(("flag", "family", "parts", "expected"), [
    ([], "landmarks", False, True), ([], "landmarks", True, True), ([], "image", True, True),
    ([], "image", False, False), (["--no-gesture"], "image", False, True),
    (["--no-gesture", "off"], "landmarks", True, False), (["--no-gesture", "off"], "landmarks", False, False),
    (["--no-gesture", "on"], "image", True, True),
])
def test_no_gesture_flag_resolves_on_every_root(tmp_path, monkeypatch, flag, family, parts, expected):
    from experiments import hagrid as cli

    monkeypatch.setattr(cli, "_layout_kind", lambda path: "parts" if parts else "v2")
    args = cli.build_parser().parse_args(flag)
    assert cli.wants_no_gesture(args, family, tmp_path) is expected


def test_no_gesture_off_is_refused_where_it_cannot_be_honoured(tmp_path, monkeypatch):
    """The image family on a parts root always has the class: say so instead of ignoring the flag."""
    from experiments import hagrid as cli
    from rnn_jax.errors import ConfigError

    monkeypatch.setattr(cli, "_layout_kind", lambda path: "parts")
    with pytest.raises(ConfigError, match="--no-gesture off"):
        cli.wants_no_gesture(cli.build_parser().parse_args(["--no-gesture", "off"]), "image", tmp_path)


@pytest.mark.parametrize(("flag", "has_class"), [([], True), (["--no-gesture", "off"], False)])
def test_no_gesture_flag_reaches_the_landmark_sets(tmp_path, monkeypatch, flag, has_class):
    """experiments.hagrid's landmark data with and without the class, on an annotated fixture
    (the landmark family: the one every HaGRID layout, parts included, trains by default)."""
    from test_hagrid_layouts import NoFinder, make_layout

    from experiments import hagrid as cli
    from rnn_jax.data.hagrid import prepare

    root = make_layout(tmp_path / "v2", "v2")
    real = prepare.prepare_landmarks
    monkeypatch.setattr(prepare, "prepare_landmarks", lambda *a, **k: real(
        *a, **{**k, "finder": NoFinder(), "cache_dir": tmp_path / "cache", "engine": None}))
    args = cli.build_parser().parse_args(["--data", str(root), "--no-progress", *flag])
    _, data = cli.build_landmark_data(args)
    assert ("no_gesture" in data.class_names) is has_class
    assert set(data.class_names) - {"no_gesture"} == {"like", "palm", "peace"}


@pytest.mark.parametrize(("augment", "flip"), [("strong", False), ("basic", True)])
def test_the_landmark_familys_augmentation_and_flips_come_from_its_preset(monkeypatch, augment, flip):
    """experiments.hagrid types neither: change the landmark preset and the run follows (the
    first row is today's preset; an explicit --augment still wins)."""
    import dataclasses

    from experiments import hagrid as cli
    from rnn_jax.presets import PRESETS

    preset = dataclasses.replace(PRESETS["landmarks"], augment=augment, flip=flip)
    args = cli.build_parser().parse_args([])
    cli.apply_preset(args, preset)
    assert (args.augment, args.no_flip) == (augment, not flip)
    assert (PRESETS["landmarks"].augment, PRESETS["landmarks"].flip) == ("strong", False)
    explicit = cli.build_parser().parse_args(["--augment", "none"])
    cli.apply_preset(explicit, preset)
    assert explicit.augment == "none"
