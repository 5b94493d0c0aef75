"""HaGRID as the sample has it: crops, unannotated photos and annotated splits read together
(rnn_jax.data.hagrid.prepare), the second-look tiles of the hand finder, and experiments.hagrid's
model family. Fixtures are shaped like ../shared/data/hagrid-sample's three parts; the hand
finder is replaced by a fake whose answers the tests choose, so each rule is checked exactly."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from rnn_jax.data.hagrid import extract, prepare
from rnn_jax.data.hagrid.engines import LocalProcessEngine, SerialEngine
from rnn_jax.data.hagrid.layout import resolve_layout
from rnn_jax.data.landmark_files import load_landmarks
from rnn_jax.errors import ConfigError, DataError
from rnn_jax.hands.finder import FinderConfig, search_tiles
from tests.conftest import gesture_frame, shared_data

GESTURES = ("like", "four")


def _jpg(path: Path, value: int, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((size[1], size[0], 3), value, np.uint8)
    cv2.imwrite(str(path), image)


def make_sample(root: Path) -> Path:
    """crops_train (like, no_gesture), photos_train (like, four), annotated val (like, four)."""
    for i in range(3):
        _jpg(root / "crops_train" / "like" / f"c{i}.jpg", 10 + i)  # value 12 = the fake finds no hand
        _jpg(root / "crops_train" / "no_gesture" / f"n{i}.jpg", 20 + i)
    for g in GESTURES:
        for i in range(2):
            _jpg(root / "photos_train" / g / f"p{g}{i}.jpg", 100 + i, (80, 60))
    ann = {}
    for g in GESTURES:
        ann[g] = {}
        for i in range(2):
            _jpg(root / "hagrid_dataset" / g / f"v{g}{i}.jpg", 200, (80, 60))
            ann[g][f"v{g}{i}"] = {"bboxes": [[0.1, 0.1, 0.2, 0.3], [0.6, 0.5, 0.2, 0.3]],
                                  "labels": [g, "no_gesture"], "user_id": f"user-{g}-{i % 2}"}
        (root / "hagrid_annotations" / "val").mkdir(parents=True, exist_ok=True)
        (root / "hagrid_annotations" / "val" / f"{g}.json").write_text(json.dumps(ann[g]))
    return root


@dataclass(frozen=True)
class FakeHand:
    landmarks: np.ndarray
    presence: float
    handedness: str = "right"

    @property
    def box(self):
        lo, hi = self.landmarks[:, :2].min(0), self.landmarks[:, :2].max(0)
        return (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))


def _hand_at(x: float, y: float, presence: float = 0.9) -> FakeHand:
    rng = np.random.default_rng(int(x * 7 + y))
    pts = np.stack([x + rng.uniform(0, 10, 21), y + rng.uniform(0, 10, 21), np.zeros(21)], 1)
    return FakeHand(pts.astype(np.float32), presence)


class FakeFinder:
    """Answers by the picture's pixel value: crops 12 -> no hand; photos -> two hands, the higher
    one (y = 5) marked by presence 0.61; second looks -> a hand at the box, presence 0.8."""

    def __init__(self) -> None:
        self.config = FinderConfig()
        self.calls = 0

    def find_hands_in_image(self, finder, image, tiles=True):
        self.calls += 1
        value = int(image[image.shape[0] // 2, image.shape[1] // 2, 0])
        if value == 12:
            return []
        if value >= 100:  # a whole photo: a resting hand low, the gesture hand high
            return [_hand_at(40, 40, 0.99), _hand_at(10, 5, 0.61)]
        return [_hand_at(15, 15)]

    def second_look(self, finder, image, box):
        self.calls += 1
        return _hand_at(box[0], box[1]).landmarks, 0.8, "left"


@pytest.fixture()
def fake(monkeypatch) -> FakeFinder:
    finder = FakeFinder()
    import rnn_jax.hands

    monkeypatch.setattr(rnn_jax.hands, "find_hands_in_image", finder.find_hands_in_image)
    monkeypatch.setattr(extract, "second_look", finder.second_look)
    return finder


def test_parts_are_found_and_read_each_by_its_rule(tmp_path: Path, fake: FakeFinder) -> None:
    root = make_sample(tmp_path / "sample")
    layout = resolve_layout(root)
    assert layout.kind == "parts" and layout.crops and layout.photos and list(layout.pools) == ["val"]
    out = prepare.prepare_landmarks(root, finder=fake, cache_dir=tmp_path / "cache", progress=False)
    train, val = load_landmarks(out / "train.npz"), load_landmarks(out / "val.npz")
    # every gesture the data has, no_gesture last
    assert train.class_names == ("four", "like", "no_gesture") == val.class_names
    report = json.loads((out / "parts.json").read_text())
    crops, photos, annotated = report["parts"]
    # crops: the finder's hand, a second look where it missed (crop c2 -> value 12)
    assert (crops["pictures"], crops["hands_kept"], crops["by_finder"], crops["by_second_look"]) == (6, 6, 5, 1)
    # photos: the hand reaching highest is the gesture hand (presence 0.61 marks it), other hands unused
    assert photos["hands_kept"] == 4 and photos["photos_with_other_hands"] == 4
    photo_rows = [i for i, s in enumerate(train.sources) if "photos_train" in s]
    assert all(train.landmarks[i][:, 1].min() < 20 for i in photo_rows)
    # annotated val kept as given: every box with its own label and the person's user_id
    assert annotated["hands_kept"] == 8 and annotated["by_annotated_box"] == 8
    assert sorted(val.class_names[k] for k in val.labels) == sorted(["four"] * 2 + ["like"] * 2 + ["no_gesture"] * 4)
    assert set(val.person_ids) == {"user-like-0", "user-like-1", "user-four-0", "user-four-1"}
    assert report["people_in_two_splits"] == {"train&val": 0}
    assert report["hands_per_class"]["train"] == {"four": 2, "like": 5, "no_gesture": 3}
    assert report["z"] == "kept"  # every hand came from the finder: its depth is kept
    assert "hands per class" in prepare.describe(out)


def test_extraction_is_cached_and_resumes_after_an_interruption(tmp_path: Path, fake: FakeFinder,
                                                                monkeypatch) -> None:
    root = make_sample(tmp_path / "sample")
    monkeypatch.setattr(extract, "CHUNK", 2)
    real = fake.find_hands_in_image
    seen = []

    def dies_after_five(finder, image, tiles=True):
        seen.append(1)
        if len(seen) == 5:
            raise KeyboardInterrupt
        return real(finder, image, tiles)

    import rnn_jax.hands

    monkeypatch.setattr(rnn_jax.hands, "find_hands_in_image", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare_landmarks(root, finder=fake, cache_dir=tmp_path / "cache", progress=False)
    monkeypatch.setattr(rnn_jax.hands, "find_hands_in_image", real)
    fake.calls = 0
    out = prepare.prepare_landmarks(root, finder=fake, cache_dir=tmp_path / "cache", progress=False)
    # the two finished chunks of crops (4 crops) are not looked at again: 2 crops + 4 photos + 8 boxes
    assert fake.calls == 2 + 4 + 8
    report = json.loads((out / "parts.json").read_text())
    assert sum(report["hands_per_class"]["train"].values()) == 10  # 6 crops + 4 photos, all kept
    assert len(load_landmarks(out / "train.npz")) == 8  # balanced: like (5) cut to the median (3)
    fake.calls = 0
    assert prepare.prepare_landmarks(root, finder=fake, cache_dir=tmp_path / "cache", progress=False) == out
    assert fake.calls == 0  # a finished extraction is read back, nothing recomputed


def test_a_root_without_parts_or_val_is_one_clear_error(tmp_path: Path, fake: FakeFinder) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is not a HaGRID layout"):
        resolve_layout(tmp_path / "empty")
    root = make_sample(tmp_path / "sample")
    import shutil

    shutil.rmtree(root / "hagrid_annotations")
    with pytest.raises(DataError, match="no annotated val split"):
        prepare.prepare_landmarks(root, finder=fake, cache_dir=tmp_path / "cache", progress=False)


def test_highest_hand_is_the_one_reaching_highest() -> None:
    low, high = _hand_at(10, 50), _hand_at(60, 3)
    assert extract.highest_hand([low, high]) is high


def test_search_tiles_cover_the_frame_with_overlap_middle_first() -> None:
    tiles = search_tiles((480, 640, 3), 3, 0.5)
    assert len(tiles) == 9 and {t[2] for t in tiles} == {320}
    xs, ys = sorted({t[0] for t in tiles}), sorted({t[1] for t in tiles})
    assert xs == [0, 160, 320] and ys == [0, 80, 160]  # last tiles end at the frame's edges
    assert tiles[:3] == [(160, 80, 320), (160, 0, 320), (160, 160, 320)]  # middle, then its nearest
    assert set(tiles[-4:]) == {(0, 0, 320), (320, 0, 320), (0, 160, 320), (320, 160, 320)}  # corners last
    assert search_tiles((480, 640, 3), 0, 0.5) == []


class _Session:
    """Stands in for an onnxruntime session: fixed outputs."""

    def __init__(self, *outputs: np.ndarray) -> None:
        self.outputs = list(outputs)

    def get_inputs(self) -> list:
        return [argparse.Namespace(name="input")]

    def run(self, _names, _feed) -> list:
        return self.outputs


def test_the_tile_turn_starts_at_the_middle_again_when_a_hand_is_lost() -> None:
    from rnn_jax.hands.finder import Hand, HandFinder
    from rnn_jax.hands.geometry import rect_from_landmarks

    no_hand = _Session(np.zeros((1, 63), np.float32), np.zeros((1, 1), np.float32),
                       np.ones((1, 1), np.float32), np.zeros((1, 63), np.float32))
    # the every-frame search (no budget): the tile order itself; the budget has its own tests (test_hands.py)
    finder = HandFinder(_Session(), no_hand, FinderConfig(tiles_per_search=2, idle_palm_rate=None))
    looked: list[tuple[int, int]] = []
    finder._palms_in = lambda region, x0, y0: looked.append((x0, y0)) or []  # record where the palm model looks
    frame = np.zeros((480, 640, 3), np.uint8)
    for _ in range(3):  # nothing tracked: a search every frame, the whole frame then 2 tiles in turn
        finder.find(frame)
    middle = (160, 80)
    assert looked[0] == (0, 0) and looked[1] == middle and middle not in looked[2:]
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(300, 340, (21, 2)), np.zeros(21)]
    finder._tracked = [Hand(points, 0.99, "right", 0.99, rect_from_landmarks(points), 7, True, (640, 480))]
    looked.clear()
    assert finder.find(frame) == []  # the tracked hand is gone (presence 0) ...
    looked.clear()
    finder.find(frame)  # ... so the next search looks at the middle tile first again
    assert looked[:2] == [(0, 0), middle]


def test_family_defaults_to_landmarks_on_hagrid_roots_only(tmp_path: Path, monkeypatch) -> None:
    import rnn_jax.hands.models
    from experiments import hagrid

    monkeypatch.setattr(rnn_jax.hands.models, "models_present", lambda *a, **k: True)
    root = make_sample(tmp_path / "sample")
    folders = tmp_path / "folders"
    _jpg(folders / "a" / "x.jpg", 1)
    auto = argparse.Namespace(family="auto")
    assert hagrid.choose_family(auto, root) == "landmarks"
    assert hagrid.choose_family(auto, folders) == "image"
    assert hagrid.choose_family(auto, None) == "image"
    assert hagrid.choose_family(argparse.Namespace(family="image"), root) == "image"
    with pytest.raises(ConfigError, match="needs a HaGRID root"):
        hagrid.choose_family(argparse.Namespace(family="landmarks"), folders)
    monkeypatch.setattr(rnn_jax.hands.models, "models_present", lambda *a, **k: False)
    with pytest.raises(ConfigError, match="build_hand_models"):
        hagrid.choose_family(auto, root)


@pytest.mark.slow
def test_hagrid_root_trains_exports_and_stores_the_reject_rule(tmp_path: Path, fake: FakeFinder,
                                                               monkeypatch) -> None:
    """The whole product path on the fixture: experiments.hagrid -> landmark lineage -> export with the
    temperature and threshold chosen on validation -> the runtime applies them."""
    import rnn_jax.hands.models
    from experiments import hagrid
    from rnn_jax.export.landmark_export import export_landmark_run
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor

    monkeypatch.setattr(rnn_jax.hands.models, "models_present", lambda *a, **k: True)
    root = make_sample(tmp_path / "sample")
    monkeypatch.setenv("RNN_JAX_CACHE", str(tmp_path / "cache" / "decoded"))
    monkeypatch.setattr(prepare, "prepare_landmarks",
                        lambda path, seed=0, no_gesture=True, progress=True, engine=None, _real=prepare.prepare_landmarks:
                        _real(path, seed=seed, finder=fake, cache_dir=tmp_path / "cache", progress=False))
    hagrid.main(["--data", str(root), "--gens", "2", "--epochs", "2", "--batch-size", "4", "--no-progress",
                 "--out", str(tmp_path / "run")])
    record = json.loads((tmp_path / "run" / "lineage.json").read_text())
    assert record["data"]["class_names"] == ["four", "like", "no_gesture"]
    assert record["config"]["model"]["name"] == "lmlp"
    report_md = (tmp_path / "run" / "report.md").read_text()
    assert "val ECE" in report_md
    report = export_landmark_run(tmp_path / "run", out=tmp_path / "m.onnx", latency=False, log=lambda *_: None)
    rule = report["reject_rule"]
    assert rule is not None and 0.0 <= rule["threshold"] <= 1.0 and rule["temperature"] > 0
    predictor = LandmarkPredictor.load(tmp_path / "m.onnx")
    assert predictor.info.reject_threshold == rule["threshold"]
    assert predictor.info.temperature == pytest.approx(rule["temperature"])
    x = predictor.features(_hand_at(3, 4).landmarks, "right")
    logits, _ = predictor.step(x)
    probs, _ = predictor.predict(x)
    scaled = np.exp(logits / rule["temperature"] - (logits / rule["temperature"]).max())
    np.testing.assert_allclose(probs, scaled / scaled.sum(), rtol=1e-5)


def test_second_look_tiles_find_more_small_hands_on_real_val_photos(hand_models: Path) -> None:
    """Real HaGRID val photos letterboxed as 640 px frames: looking at the tiles too finds gesture
    hands the whole-frame palm search misses (measured on all 167: 148 -> 165 found, with the face check)."""
    root = shared_data("hagrid-sample")
    from rnn_jax.hands import HandFinder, find_hands_in_image

    items = prepare.annotated_photos(root, "val")[:40]
    finder = HandFinder.load(hand_models, threads=1)
    found = {True: 0, False: 0}
    for path, meta in items:
        frame, (x0, y0, x1, y1) = gesture_frame(path, meta)
        for tiles in (True, False):
            hands = find_hands_in_image(finder, frame, tiles=tiles)
            found[tiles] += any(x0 <= hd.landmarks[:, 0].mean() <= x1 and y0 <= hd.landmarks[:, 1].mean() <= y1
                                for hd in hands)
    assert found[True] > found[False]
    assert found[True] >= 0.95 * len(items)


def test_balanced_repeats_rare_classes_and_cuts_the_largest_with_the_runs_seed() -> None:
    labels = np.asarray(["rare"] * 10 + [f"g{k}" for k in range(3) for _ in range(100)] + ["no_gesture"] * 700)
    rows, factors = prepare.balanced(labels, share=0.5, cap=1.0, seed=0)
    counts = {lab: int(np.sum(labels[rows] == lab)) for lab in ("rare", "g0", "no_gesture")}
    assert counts == {"rare": 50, "g0": 100, "no_gesture": 100}  # median 100: rare x5, no_gesture cut to 100
    assert factors == {"rare": 5, "no_gesture": round(100 / 700, 3)}
    kept = rows[labels[rows] == "no_gesture"]
    assert len(set(kept.tolist())) == 100 and np.all(np.diff(kept) > 0)  # distinct hands, in order
    np.testing.assert_array_equal(prepare.balanced(labels, seed=0)[0], rows)
    other = prepare.balanced(labels, seed=1)[0]
    assert set(other[labels[other] == "no_gesture"].tolist()) != set(kept.tolist())  # each seed its own subset


def test_worker_processes_extract_the_same_rows(hand_models: Path, tmp_path: Path, monkeypatch) -> None:
    """Chunks extracted by two worker processes (each its own hand finder) = in this process."""
    import shutil

    from rnn_jax.hands import HandFinder

    src = shared_data("hagrid-sample", "crops_train")
    root = tmp_path / "sample"
    for c in ("like", "no_gesture"):
        (root / "crops_train" / c).mkdir(parents=True)
        for p in sorted((src / c).iterdir())[:3]:
            shutil.copy(p, root / "crops_train" / c / p.name)
    monkeypatch.setattr(extract, "CHUNK", 2)
    items = extract.class_folder_items(root / "crops_train", root)
    finder = HandFinder.load(hand_models, threads=1)
    alone = extract.plan_chunks("crops", root, items, tmp_path / "one")
    pooled = extract.plan_chunks("crops", root, items, tmp_path / "two")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    extract.run_work_list(alone, root, SerialEngine(finder), progress=False)
    extract.run_work_list(pooled, root, LocalProcessEngine(2, str(hand_models)), progress=False)
    assert len(list((tmp_path / "two").glob("crops-*.npz"))) == 3
    one = [extract.load_chunk(c) for c in alone]
    two = [extract.load_chunk(c) for c in pooled]
    for a, b in zip(one, two, strict=True):
        assert a["source"].tolist() == b["source"].tolist() and a["how"].tolist() == b["how"].tolist()
        np.testing.assert_allclose(a["landmarks"], b["landmarks"], atol=1e-4)
