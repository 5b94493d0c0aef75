"""rnn_jax.hands: anchor/box geometry (synthetic), the built models on real photos, live with hands."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rnn_jax import preprocess
from rnn_jax.errors import ModelFileError
from rnn_jax.hands import HandModelsMissing, hand_crop, pad_for_detection
from rnn_jax.hands.geometry import (
    Palm,
    Rect,
    decode_palms,
    letterbox_rgb,
    palm_anchors,
    rect_from_landmarks,
    rect_from_palm,
    warp_square,
    weighted_nms,
)
from rnn_jax.hands.models import BUILD_COMMAND, open_models
from tests.conftest import REPO, gesture_frame, shared_data
from tests.onnx_fixtures import make_fixture_info, write_fixture_onnx

BANNED = ("jax", "jaxlib", "flax", "optax", "orbax", "tensorflow", "tensorflow_datasets", "jax2onnx",
          "grain", "tflite", "tflite2onnx", "ai_edge_litert")
NO_HAND_SHOTS = ((98, 153), (200, 269))  # Megamind.avi: the man alone, then the face close-up


def _tool():
    spec = importlib.util.spec_from_file_location("build_hand_models", REPO / "tools" / "build_hand_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- geometry (no models)
def test_anchors_follow_the_two_grids() -> None:
    a = palm_anchors()
    assert a.shape == (2016, 2)
    np.testing.assert_allclose(a[0], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(a[1], a[0])  # 2 anchors per cell on the 24x24 grid
    np.testing.assert_allclose(a[2], [1.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(a[1152], [0.5 / 12, 0.5 / 12])  # then 6 per cell on 12x12
    np.testing.assert_allclose(a[1152 + 6], [1.5 / 12, 0.5 / 12])


def test_decode_maps_back_through_the_letterbox() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)  # wide: bars above and below
    _, box = letterbox_rgb(frame, 192)
    assert box.scale == pytest.approx(0.96) and box.pad_y == 48 and box.pad_x == 0
    raw = np.zeros((2016, 18), np.float32)
    logits = np.full(2016, -20.0, np.float32)
    i = 1152 + 6 * (12 * 6 + 6)  # the 12x12 cell at row 6, col 6: centre (0.5417, 0.5417)
    logits[i] = 5.0
    raw[i, 0:4] = [9.6, 0.0, 48.0, 24.0]  # dx = +9.6 input px, w 48, h 24
    raw[i, 4:6] = [0.0, 19.2]  # wrist 19.2 px below the anchor
    (score, cxcywh, kps), = decode_palms(raw, logits, box, 0.5)
    anchor = palm_anchors()[i] * 192
    assert score == pytest.approx(1 / (1 + math.exp(-5)))
    np.testing.assert_allclose(cxcywh, [(anchor[0] + 9.6) / 0.96, (anchor[1] - 48) / 0.96, 50, 25], atol=1e-4)
    np.testing.assert_allclose(kps[0], [anchor[0] / 0.96, (anchor[1] + 19.2 - 48) / 0.96], atol=1e-4)


def test_face_anchors_and_decoding_follow_the_short_range_detector() -> None:
    from rnn_jax.hands.geometry import decode_faces, face_anchors, overlap_fraction

    a = face_anchors()
    assert a.shape == (896, 2)  # 16x16 x 2 + 8x8 x 6
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[512], [0.5 / 8, 0.5 / 8])
    frame = np.zeros((256, 256, 3), np.uint8)
    _, box = letterbox_rgb(frame, 128)  # scale 0.5, no bars
    raw = np.zeros((896, 16), np.float32)
    logits = np.full(896, -20.0, np.float32)
    logits[512] = 3.0
    raw[512, 0:4] = [4.0, -2.0, 32.0, 40.0]
    (score, cxcywh, kps), = decode_faces(raw, logits, box)
    assert kps.shape == (6, 2) and score == pytest.approx(1 / (1 + math.exp(-3)))
    np.testing.assert_allclose(cxcywh, [(8 + 4) / 0.5, (8 - 2) / 0.5, 64, 80], atol=1e-4)
    assert overlap_fraction((0, 0, 10, 10), np.array([10.0, 10.0, 10.0, 10.0])) == pytest.approx(0.25)
    assert overlap_fraction((0, 0, 10, 10), np.array([50.0, 50.0, 10.0, 10.0])) == 0.0


def test_weighted_nms_averages_overlaps_and_keeps_apart_boxes() -> None:
    kp = np.zeros((7, 2))
    cands = [(0.9, np.array([10.0, 10, 10, 10]), kp), (0.6, np.array([12.0, 10, 10, 10]), kp + 3),
             (0.8, np.array([60.0, 60, 10, 10]), kp)]
    palms = weighted_nms(cands, 0.3)
    assert len(palms) == 2 and palms[0].score == 0.9
    np.testing.assert_allclose(palms[0].box[0], (0.9 * 10 + 0.6 * 12) / 1.5)
    np.testing.assert_allclose(palms[0].keypoints[0, 0], 0.6 * 3 / 1.5)
    assert len(weighted_nms(cands, 0.3, max_out=1)) == 1 and weighted_nms([], 0.3) == []


def test_rect_from_palm_turns_fingers_up_and_moves_towards_them() -> None:
    kps = np.zeros((7, 2))
    kps[0], kps[2] = [50, 80], [50, 40]  # upright hand: wrist below the middle knuckle
    rect = rect_from_palm(Palm(0.9, np.array([50.0, 60, 20, 30]), kps))
    assert rect.angle == pytest.approx(0.0)
    assert (rect.cx, rect.cy, rect.side) == pytest.approx((50, 60 - 15, 30 * 2.6))
    kps[2] = [90, 80]  # fingers point right (+x): the square turns by +90 degrees
    rect = rect_from_palm(Palm(0.9, np.array([50.0, 60, 20, 20]), kps))
    assert rect.angle == pytest.approx(math.pi / 2)
    assert (rect.cx, rect.cy) == pytest.approx((60, 60))  # shifted half a box towards the fingers


def test_warp_square_puts_the_rotated_square_upright() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[20:30, 60:70] = 255  # a white patch
    rect = Rect(50.0, 50.0, 80.0, -math.pi / 2)
    ax, ay = rect.axes()
    out = warp_square(frame, rect, 80)
    ys, xs = np.nonzero(out[..., 0] > 128)
    centre = rect.to_frame(np.array([[xs.mean() / 80, ys.mean() / 80]]))[0]
    np.testing.assert_allclose(centre, [64.5, 24.5], atol=1.5)  # maps back onto the patch
    np.testing.assert_allclose(rect.corners()[0], rect.to_frame(np.array([[0, 0]]))[0])
    assert np.allclose(ax, [0, -1]) and np.allclose(ay, [1, 0])


def test_rect_from_landmarks_is_steady_on_its_own_output() -> None:
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(40, 60, (21, 2)), np.zeros(21)]
    pts[0], pts[9] = [50, 70, 0], [50, 45, 0]
    a, b = rect_from_landmarks(pts), rect_from_landmarks(pts + [5, 0, 0])
    assert b.cx == pytest.approx(a.cx + 5) and b.side == pytest.approx(a.side)
    assert abs(a.angle) < 0.3


def test_hand_crop_is_the_hagrid_box_rule() -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    box = (0.25, 0.2, 0.3, 0.4)
    left, top, side = preprocess.square_box(box, 80, 60, 1.5)
    np.testing.assert_array_equal(hand_crop(frame, box, 32), preprocess.crop_square(frame, left, top, side, 32))

    class Boxed:
        box = (20.0, 12.0, 24.0, 24.0)  # the same box in pixels

    np.testing.assert_array_equal(hand_crop(frame, Boxed(), 32), hand_crop(frame, box, 32))
    padded = pad_for_detection(frame, 0.25)
    assert padded.shape == (100, 120, 3) and (padded[0, 0] == frame[0, 0]).all()


def test_missing_models_name_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(HandModelsMissing, match="build_hand_models.py"):
        open_models(tmp_path)
    assert BUILD_COMMAND in "run `python tools/build_hand_models.py`"
    (tmp_path / "palm_detection_full.onnx").write_bytes(b"not a model")
    (tmp_path / "hand_landmark_full.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="corrupt or not an ONNX model") as err:
        open_models(tmp_path)
    assert "\n" not in str(err.value)


def test_foreign_onnx_file_is_refused(tmp_path: Path) -> None:
    write_fixture_onnx(tmp_path / "palm_detection_full.onnx")  # a classifier, not a palm model
    with pytest.raises(ModelFileError, match="not the expected hand model"):
        open_models(tmp_path)


def test_live_cli_hands_on_without_models_exits_2(tmp_path: Path) -> None:
    model = write_fixture_onnx(tmp_path / "m.onnx", info=make_fixture_info(crop_mode="hand"))
    proc = subprocess.run([sys.executable, "-m", "rnn_jax.live", "--onnx", str(model), "--source", "x.avi",
                           "--headless", "--hands", "on", "--hand-models", str(tmp_path / "none")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: hand model") and BUILD_COMMAND in lines[0]


# --------------------------------------------------------------------------- the built models
# hand_models (tests/conftest.py): built once per machine; a failed build fails these tests


def test_build_is_cached_and_checked(hand_models: Path) -> None:
    manifest = json.loads((hand_models / "manifest.json").read_text())
    assert {f["onnx"] for f in manifest["files"]} == {
        "palm_detection_full.onnx", "palm_detection_lite.onnx", "hand_landmark_full.onnx",
        "hand_landmark_lite.onnx", "face_detection_short_range.onnx"}
    # the dev install has the TFLite interpreter: every file was compared with its original
    assert importlib.util.find_spec("ai_edge_litert") is not None
    for f in manifest["files"]:
        assert f["compared_with_tflite"] and f["max_relative_difference"] < 1e-3, (
            f"{f['onnx']}: {f}; rebuild with python tools/build_hand_models.py --force")
    assert "Apache License" in (hand_models / "LICENSE").read_text()
    assert "Format change" in (hand_models / "NOTICE.md").read_text()
    assert _tool().build(hand_models) == manifest  # second call: nothing rebuilt


def test_finds_one_hand_in_a_real_photo_and_tracks_it(hand_models: Path) -> None:
    from rnn_jax.hands import FinderConfig, HandFinder

    folder = shared_data("sign-language-digits", "val", "5")
    photo = sorted(folder.iterdir())[0]
    image = pad_for_detection(cv2.imread(str(photo)))
    finder = HandFinder.load(hand_models, config=FinderConfig(max_hands=1))  # (2: a second hand is searched)
    (hand,) = finder.find(image)
    assert hand.presence > 0.9 and not hand.tracked and hand.landmarks.shape == (21, 3)
    x, y, w, h = hand.box
    assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0]
    palm_runs = finder.stats.palm_runs
    (again,) = finder.find(image)
    assert again.tracked and again.track_id == hand.track_id and finder.stats.palm_runs == palm_runs
    np.testing.assert_allclose(again.box, hand.box, atol=3)
    assert finder.find(np.zeros_like(image)) == []
    json.dumps(hand.to_json())


@pytest.mark.shared
def test_the_face_check_admits_small_hands_and_refuses_faces(hand_models: Path) -> None:
    """A hand only a tile saw, with landmark presence between 0.85 and 0.95, is kept when it lies on
    no face: two small val gesture hands (no face near them) are found only with the face model,
    and on Megamind's face close-up the same lower bar without the face check takes the face for a
    hand where the face check refuses it."""
    from rnn_jax.data.hagrid.prepare import annotated_photos
    from rnn_jax.hands import FinderConfig, HandFinder, find_hands_in_image

    with_face = HandFinder.load(hand_models, threads=1)
    assert with_face.face_session is not None  # tools/build_hand_models.py builds it
    without = HandFinder(with_face.palm_session, with_face.landmark_session, FinderConfig())
    lower_bar_only = HandFinder(with_face.palm_session, with_face.landmark_session, FinderConfig(min_presence_tile=0.85))

    items = annotated_photos(shared_data("hagrid-sample"), "val")
    for index in (123, 148):  # a stop_inverted 22 px wide and a two_up 22 px wide in 640 px frames
        frame, (x0, y0, x1, y1) = gesture_frame(*items[index])

        def found(finder, frame=frame, x0=x0, y0=y0, x1=x1, y1=y1) -> bool:
            return any(x0 - 10 <= hd.landmarks[:, 0].mean() <= x1 + 10 and y0 - 10 <= hd.landmarks[:, 1].mean() <= y1 + 10
                       for hd in find_hands_in_image(finder, frame))

        assert found(with_face) and not found(without), index

    capture = cv2.VideoCapture(str(shared_data("video", "Megamind.avi")))
    frames = []
    for i in range(213):
        ok, frame = capture.read()
        assert ok
        if i >= 205:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    assert sum(bool(find_hands_in_image(lower_bar_only, f)) for f in frames) >= 4  # the face, taken for a hand
    assert sum(bool(find_hands_in_image(with_face, f)) for f in frames) == 0


@pytest.mark.shared
def test_megamind_no_hand_shots_show_no_gesture(hand_models: Path, tmp_path: Path) -> None:
    video = shared_data("video", "Megamind.avi")
    model = write_fixture_onnx(tmp_path / "m.onnx", info=make_fixture_info(crop_mode="hand"))
    jsonl = tmp_path / "out.jsonl"
    from rnn_jax.live.cli import main

    assert main(["--onnx", str(model), "--source", str(video), "--headless", "--hands", "on",
                 "--hand-models", str(hand_models), "--jsonl", str(jsonl)]) == 0
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(rows) == 270
    shots = [r for a, b in NO_HAND_SHOTS for r in rows[a : b + 1]]
    # no hand in view: no gesture on any frame, and a "hand" found on at most 2 of the 126 frames
    # (measured before the second-look palm search of 36b20e4: 0 gestures, 1 frame with a hand)
    assert [r["frame"] for r in shots if r["label"] is not None] == []
    assert sum(bool(r["hands"]) for r in shots) <= 2
    woman = [r["hands"] for r in rows[1:98] if r["hands"]]
    assert len(woman) >= 90  # the woman's hand on the wine glass: found on 95 of these 97 frames
    sides = [hands[0]["handedness"] for hands in woman]
    assert max(sides.count("left"), sides.count("right")) >= 0.9 * len(sides)  # one hand, one side
    height, width = 528, 720  # Megamind.avi
    for hands in woman:
        for hand in hands:
            x, y, w, h = hand["box"]
            points = np.asarray(hand["landmarks"], float)
            assert points.shape == (21, 3) and w > 0 and h > 0
            assert (-w <= x and x + w <= width + w and -h <= y and y + h <= height + h), hand["box"]
            # the landmarks lie in (a margin around) the hand's own box
            assert np.all(points[:, 0] >= x - w / 2) and np.all(points[:, 0] <= x + 1.5 * w)
            assert np.all(points[:, 1] >= y - h / 2) and np.all(points[:, 1] <= y + 1.5 * h)


def test_live_path_with_hands_imports_no_jax(hand_models: Path, tmp_path: Path) -> None:
    """The whole live loop with hands on, with JAX/Flax/TensorFlow and the build tools unimportable."""
    model = write_fixture_onnx(tmp_path / "m.onnx", info=make_fixture_info(crop_mode="hand"))
    frame = np.full((120, 160, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "f.png"), frame)
    code = f"""
import sys
for name in {BANNED!r}:
    sys.modules[name] = None
import rnn_jax.hands, rnn_jax.live, rnn_jax.runtime
from rnn_jax.hands import crop, finder, geometry, models
from rnn_jax.live import cli
rc = cli.main(["--onnx", {str(model)!r}, "--source", {str(tmp_path / 'f.png')!r}, "--headless",
               "--hands", "on", "--hand-models", {str(hand_models)!r}])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {BANNED!r} and sys.modules[m] is not None)
print("RC", rc, "LOADED", loaded)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "RC 0 LOADED []" in proc.stdout
    assert "hands: on" in proc.stderr


def _digits_folders(tmp_path: Path) -> Path:
    """Tiny class folders from real photos (2 classes), plus one picture with no hand."""
    import shutil

    src = shared_data("sign-language-digits")
    root = tmp_path / "digits"
    for split, n in (("train", 3), ("val", 2)):
        for digit in ("1", "5"):
            (root / split / digit).mkdir(parents=True)
            for photo in sorted((src / split / digit).iterdir())[:n]:
                shutil.copy(photo, root / split / digit / photo.name)
    cv2.imwrite(str(root / "train" / "1" / "blank.png"), np.full((100, 100, 3), 128, np.uint8))
    return root


def test_crop_hand_on_class_folders_finds_boxes_once(hand_models: Path, tmp_path: Path) -> None:
    from rnn_jax.data.hagrid.images import load_hagrid
    from rnn_jax.data.hand_crops import hand_train_size

    root = _digits_folders(tmp_path)
    ds = load_hagrid(root, 32, crop="hand", cache_dir=tmp_path / "cache", progress=False)
    note = ds.notes["hand_boxes"]
    assert note["no_hand"] == 1 and note["found"] == 10 and note["examples_no_hand"][0].endswith("blank.png")
    assert note["per_split"]["train"] == {"photos": 7, "no_hand": 1}
    assert ds.train.images.shape == (6, hand_train_size(32), hand_train_size(32), 3) and len(ds.train.labels) == 6
    assert ds.val.images.shape == (4, 32, 32, 3) and ds.train_view is not None
    again = load_hagrid(root, 32, crop="hand", cache_dir=tmp_path / "cache", progress=False)
    assert again.notes["hand_boxes"]["detected_now"] == 0 and again.notes["cache"]["reused"]


def test_crop_hand_on_class_folders_without_models_says_how_to_build(tmp_path: Path, monkeypatch) -> None:
    from rnn_jax.data.hagrid.images import load_hagrid

    root = tmp_path / "data"
    for split in ("train", "val"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            cv2.imwrite(str(root / split / name / "x.png"), np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setenv("RNN_JAX_HANDS", str(tmp_path / "no-models"))
    with pytest.raises(HandModelsMissing, match="build_hand_models.py"):
        load_hagrid(root, 16, crop="hand", cache_dir=tmp_path / "cache", progress=False)


# --------------------------------------------------------------------------- the live search budget
def _scene(seed: int = 0) -> np.ndarray:
    """A smooth random 640x480 picture (blobs tens of pixels wide, like a room, not pixel noise)."""
    coarse = np.random.default_rng(seed).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    return cv2.resize(coarse, (640, 480), interpolation=cv2.INTER_CUBIC)


def test_a_lost_hands_look_goes_where_it_was_heading() -> None:
    """A hand lost mid-swipe is looked for one step ahead, in a region grown by the step (so it
    still holds where the hand was); a still hand (no step, or no earlier box) where it was."""
    from rnn_jax.hands.budget import around, box_step

    frame = (480, 640, 3)
    box = (300.0, 200.0, 60.0, 60.0)  # centre (330, 230)
    assert box_step(None, box) == (0.0, 0.0)
    step = box_step((255.0, 200.0, 60.0, 60.0), box)
    assert step == (45.0, 0.0)
    x0, y0, side = around(box, frame, 160, step)
    still = around(box, frame, 160)
    assert still == (250, 150, 160) and side == 160 + 90
    assert x0 + side / 2 == 330 + 45 and y0 + side / 2 == 230  # centred one step ahead
    assert x0 <= 300 and x0 + side >= 360 + 45  # the last box and the next one both inside
    x0, _, side = around((600.0, 200.0, 30.0, 30.0), frame, 160, (45.0, 0.0))  # heading out: clipped inside
    assert x0 + side == 640


def test_a_tracked_hand_is_looked_for_ahead_when_it_moves_fast() -> None:
    """A fast hand's square is tried one step ahead first and where it was second; a jittering
    one where it was first; a hand without a step once, where it was."""
    from rnn_jax.hands.finder import AHEAD_FIRST, tracking_squares
    from rnn_jax.hands.geometry import Rect

    rect = Rect(300.0, 200.0, 150.0, 0.1)
    first, second = tracking_squares(rect, (45.0, 0.0))  # a swipe at 15 fps: 0.3 of the square
    assert (first.cx, first.cy, first.side, first.angle) == (345.0, 200.0, 150.0, 0.1) and second == rect
    small = AHEAD_FIRST * rect.side / 2
    first, second = tracking_squares(rect, (0.0, -small))
    assert first == rect and (second.cx, second.cy) == (300.0, 200.0 - small)
    assert tracking_squares(rect, (0.0, 0.0)) == (rect, None)


def _swiped_hand_ids(hand_models: Path, start: float, step: float, frames: int) -> list[list[list[int]]]:
    """Two real HaGRID val open hands, each held still 10 frames at x = ``start`` and then moved
    ``step`` px a frame, through the live finder (default search): the track ids per frame, per hand."""
    from rnn_jax.hands import HandFinder
    from rnn_jax.live.settings import DEFAULT_HAND_SEARCH, finder_config
    from tools.motion_videos import FRAME, load_crops, paste

    crops = load_crops(shared_data("hagrid-sample"))["open"][:2]
    finder = HandFinder.load(hand_models, threads=1, config=finder_config(DEFAULT_HAND_SEARCH, 2))
    runs = []
    for crop in crops:
        finder.reset()
        seen = []
        for k in range(frames):
            frame = crop.background.copy()
            paste(frame, crop.image, (start + step * max(0, k - 10), FRAME[1] / 2))
            seen.append([h.track_id for h in finder.find(frame)])
        runs.append(seen)
    return runs


def test_a_real_hand_swiped_at_15_fps_stays_tracked(hand_models: Path) -> None:
    """A real HaGRID val hand (open palm) held still, then moved 45 px a frame (a swipe at 15
    frames/s) with the live budget on: tracked on every frame under one id. Looked for where it
    was, the landmark model lost it mid-swipe and the budget found it again only frames later."""
    for seen in _swiped_hand_ids(hand_models, start=150.0, step=45.0, frames=20):
        moving = seen[10:]
        assert all(len(ids) == 1 for ids in moving) and len({ids[0] for ids in moving}) == 1, seen


def test_lag_shift_follows_a_moved_picture() -> None:
    """The picture around a palm found a frame ago is found again where it moved (a swipe), and a
    still or featureless one does not move."""
    from rnn_jax.hands.finder import lag_shift

    then = _scene(3)
    now = np.roll(then, (-10, 40), axis=(0, 1))  # 40 px right, 10 up
    dx, dy = lag_shift(then, now, np.array([300.0, 240.0, 60.0, 60.0]))
    assert abs(dx - 40) <= 2 and abs(dy + 10) <= 2
    assert lag_shift(then, then, np.array([300.0, 240.0, 60.0, 60.0])) == (0.0, 0.0)
    flat = np.full_like(then, 120)
    assert lag_shift(flat, flat, np.array([300.0, 240.0, 60.0, 60.0])) == (0.0, 0.0)


def test_a_hand_lost_in_a_fast_swipe_is_found_where_it_went(hand_models: Path) -> None:
    """A real HaGRID val hand held still, then moved 75 px a frame (a fast swipe at 15 frames/s, more
    than the look-ahead keeps): once lost, the palm the search beside the loop finds is moved to where
    its picture went before the landmark model looks (else it looked a frame behind the hand, turned
    it down frame after frame, and the swipe's rest went unseen), and the hand is tracked on."""
    for seen in _swiped_hand_ids(hand_models, start=80.0, step=75.0, frames=18):
        last = seen[-4:]  # the swipe's last frames: one hand, one id
        assert all(len(ids) >= 1 for ids in last) and len({ids[-1] for ids in last}) == 1, seen


def test_search_budget_looks_only_where_the_picture_changed() -> None:
    """A still scene costs one look per region, then nothing; something appearing in a corner gets
    a square around it looked at at once; a lost hand's surroundings come first, borrowed from the bucket."""
    from dataclasses import replace

    from rnn_jax.hands.budget import SearchBudget, motion_image
    from rnn_jax.hands.finder import search_tiles

    tiles = search_tiles((480, 640), 3, 0.5)
    budget = SearchBudget(burst=4.0, motion_threshold=0.01, max_gap=1000)
    small = motion_image(_scene())
    looks = []
    for frame in range(60):
        assert budget.see(small, frame, 1 + len(tiles)) == (frame == 0)  # the first frame is a new scene
        budget.scene_looks = 0  # (paid by tokens here)
        budget.earn(1.0)
        looks.append(budget.plan(small, tiles, frame))
    assert looks[0] == ("whole", None)
    assert [look[1] for look in looks[1:10]] == tiles  # every tile once, from the middle
    assert looks[10:] == [None] * 50  # nothing changed: no palm run
    assert budget.tokens == 4.0  # saved up to the burst
    moved = _scene()
    x, y, side = tiles[-1]  # a corner tile
    moved[y + side - 80 : y + side, x + side - 80 : x + side] = 255 - moved[y + side - 80 : y + side,
                                                                         x + side - 80 : x + side]
    assert not budget.see(motion_image(moved), 60, 1 + len(tiles))
    assert budget.hot is not None
    wide = replace(budget, hot_margin=None, looks=dict(budget.looks))  # (the tile that holds it, as before)
    # where it appeared, at once: a square 2.5x the 80 px that changed (200 px), inside the frame
    assert budget.plan(motion_image(moved), tiles, 60) == ("near", (440, 280, 200))
    assert wide.plan(motion_image(moved), tiles, 60) == ("tile", tiles[-1])
    budget.restart([(10, 20, 100)], 61)
    budget.tokens = 0.0
    assert budget.plan(motion_image(moved), tiles, 61) == ("focus", (10, 20, 100))  # borrowed
    assert budget.tokens == -1.0
    budget.restart([(10, 20, 100)] * 5, 62)
    focus = [budget.plan(motion_image(moved), tiles, 62) for _ in range(5)]
    assert focus[:2] == [("focus", (10, 20, 100))] * 2 and focus[2:] == [None] * 3  # debt <= burst - 1
    assert budget.tokens == -3.0


def test_search_budget_new_scene_once_per_cut() -> None:
    """A new scene (a cut, the next photo) earns one look at each region outside the bucket and drops
    the looks around lost hands; the same picture held still is a new scene on its first frame only."""
    from rnn_jax.hands.budget import SearchBudget, motion_image
    from rnn_jax.hands.finder import search_tiles

    tiles = search_tiles((480, 640), 3, 0.5)
    budget = SearchBudget(burst=4.0, motion_threshold=0.01, max_gap=1000, tokens=0.0)
    first, second = motion_image(_scene(0)), motion_image(_scene(1))
    assert budget.see(first, 0, 1 + len(tiles))  # a fresh budget: the first frame is a new scene
    budget.scene_looks = 0
    budget.restart([(10, 20, 100)], 0)
    budget.focus.clear()  # (nothing borrowed below)
    cuts, looks = [], []
    for frame in range(1, 30):
        cuts.append(budget.see(second, frame, 1 + len(tiles)))
        looks += [look for look in (budget.plan(second, tiles, frame), budget.plan(second, tiles, frame)) if look]
    assert cuts == [True] + [False] * 28  # held still: one new scene
    assert len(looks) == 1 + len(tiles) and looks[0] == ("whole", None)  # each region once, no token spent
    assert budget.tokens == 0.0 and budget.scene_looks == 0


def test_search_budget_a_gust_is_not_a_new_scene() -> None:
    """A new scene is a jump from a steady picture (a cut, the next photo); the same share changed
    after a frame that was already changing a lot (wind in a tree, a body moving close) is not one."""
    from rnn_jax.hands.budget import CUT_FRACTION, SearchBudget

    rng = np.random.default_rng(0)
    picture = rng.integers(0, 200, (60, 80)).astype(np.uint8)
    budget = SearchBudget()

    def changed(share: float) -> np.ndarray:
        mask = rng.random(picture.shape) < share
        return np.where(mask, picture + 50, picture).astype(np.uint8)

    assert budget.see(picture, 0, 10)  # the first frame
    assert not budget.see(picture, 1, 10)  # steady
    gust = changed(0.2)
    assert not budget.see(gust, 2, 10)  # under CUT_FRACTION
    assert not budget.see(changed(CUT_FRACTION + 0.1), 3, 10)  # over it, but the frame before was changing
    assert not budget.see(picture, 4, 10) and budget.change >= CUT_FRACTION  # (back: also a big change)
    assert not budget.see(picture, 5, 10)  # steady again
    assert budget.see(changed(CUT_FRACTION + 0.1), 6, 10)  # a jump from a steady picture


def test_a_near_persons_new_scene_is_looked_at_whole_first(hand_models: Path) -> None:
    """Megamind's face close-up (a face 0.33-0.42 of the frame, no hand): a new scene costs one palm
    run, not one per region; without the rule, ten. A HaGRID val photo of a person near the camera
    showing a fist: the whole frame finds the hand alone, then the tiles look for the other hand."""
    from rnn_jax.hands import FinderConfig, HandFinder
    from rnn_jax.preprocess import letterbox

    capture = cv2.VideoCapture(str(shared_data("video", "Megamind.avi")))
    capture.set(cv2.CAP_PROP_POS_FRAMES, NO_HAND_SHOTS[1][0])
    frames = [capture.read()[1] for _ in range(6)]
    capture.release()
    base = HandFinder.load(hand_models)
    near = HandFinder(base.palm_session, base.landmark_session, FinderConfig(), base.face_session)
    always = HandFinder(base.palm_session, base.landmark_session, FinderConfig(near_face=None), base.face_session)
    for finder in (near, always):
        for frame in frames:
            assert finder.find(frame) == []
    assert near.stats.palm_runs <= 2  # the whole frame (+ one routine look)
    assert always.stats.palm_runs >= 10  # the whole frame and every tile
    photo = shared_data("hagrid-sample", "hagrid_dataset", "fist", "1a1c385a-7ab5-49a0-8291-99b804d8ec38.jpg")
    frame = letterbox(cv2.imread(str(photo)), 640)  # (face 0.25 of the frame)
    near.reset()
    near.stats.palm_runs = 0
    assert len(near.find(frame)) == 1 and near.stats.palm_runs == 1  # the fist, from the whole frame alone
    for _ in range(4):
        near.find(frame)
    assert near.stats.palm_runs >= 1 + 9  # then every tile, for the other hand


def test_search_budget_average_is_its_rate() -> None:
    """Whatever happens (a scene that never stops moving, something appearing, hands lost again and
    again), the looks average at most the rate, plus what the bucket held at the start and its debt."""
    from rnn_jax.hands.budget import SearchBudget, motion_image
    from rnn_jax.hands.finder import search_tiles

    tiles = search_tiles((480, 640), 3, 0.5)
    for lost_every in (0, 7):
        budget = SearchBudget(burst=4.0, motion_threshold=0.01, max_gap=30)
        start = budget.tokens
        base = _scene()
        looks = 0
        for frame in range(300):
            walking = base.copy()  # someone crossing the room, 8 px a frame, forever: never a new scene
            x = (8 * frame) % 560
            walking[200:440, x : x + 80] = 20
            small = motion_image(walking)
            budget.see(small, frame, 1 + len(tiles))
            budget.earn(0.2)
            if lost_every and frame % lost_every == 0:
                budget.restart([(x, 200, 240)], frame)
            looks += budget.plan(small, tiles, frame) is not None
        # (+ the first frame's new scene: a look at each region)
        assert 0.2 * 300 - 4 <= looks <= 0.2 * 300 + start + 1 + len(tiles) + (budget.burst - 1) * (lost_every > 0)


def test_budgeted_finder_on_real_photos(hand_models: Path) -> None:
    """Idle frames under the budget cost a fraction of a palm run; a search beside the loop
    (search_lag 1) finds the same hand one frame later; the still-photo path is untouched."""
    from rnn_jax.hands import FinderConfig, HandFinder, find_hands_in_image
    from rnn_jax.live.settings import HAND_SEARCH, finder_config

    photo = sorted(shared_data("sign-language-digits", "val", "5").iterdir())[0]
    image = pad_for_detection(cv2.imread(str(photo)))
    now = HandFinder.load(hand_models)  # budget on, search_lag 0
    beside = HandFinder(now.palm_session, now.landmark_session, finder_config("balanced"), now.face_session)
    unbudgeted = HandFinder(now.palm_session, now.landmark_session, FinderConfig(idle_palm_rate=None),
                            now.face_session)
    empty = np.zeros_like(image)
    for finder in (now, beside, unbudgeted):
        for _ in range(60):
            assert finder.find(empty) == []
    # a still empty scene: one look at each region (whole + 9 tiles), then the whole frame every 30 frames
    assert now.stats.palm_runs <= 12 and beside.stats.palm_runs <= 12
    assert unbudgeted.stats.palm_runs >= 60 * 3  # as before: whole frame + 2 tiles on every frame
    now.reset()
    beside.reset()
    # a tracked hand in a picture held still: its landmark run on every frame; palm runs only for the
    # first frame's new scene (a look at each region, for a second hand) and a whole-frame look every 30
    tracked = HandFinder(now.palm_session, now.landmark_session, finder_config("balanced"), now.face_session)
    assert all(len(tracked.find(image)) == 1 for _ in range(90)) and tracked.stats.palm_runs <= 1 + 9 + 3
    assert tracked.stats.landmark_runs <= 90 + tracked.stats.palm_runs  # (+ a palm beside the hand, now and then)
    tracked.close()
    # a hand appears in a still room (not a new scene: 7% of the picture changed): the region around it
    # is looked at on that frame; beside the loop, its palms join the next frame
    room = np.full((480, 640, 3), 90, np.uint8)
    entered = room.copy()
    entered[120 : 120 + image.shape[0], 200 : 200 + image.shape[1]] = image
    for finder in (now, beside):
        for _ in range(12):  # the first frame's new scene: a look at each region, then nothing
            assert finder.find(room) == []
    runs = now.stats.palm_runs
    (hand,) = now.find(entered)
    assert now.stats.palm_runs == runs + 1  # one look, where it appeared
    assert beside.find(entered) == []  # its palm search runs beside the loop...
    (later,) = beside.find(entered)  # ... and joins the next frame
    np.testing.assert_allclose(later.box, hand.box, atol=3)
    beside.close()
    assert set(HAND_SEARCH) == {"light", "balanced", "thorough", "every-frame"}
    still = [h.box for h in find_hands_in_image(now, image)]
    assert still == [h.box for h in find_hands_in_image(unbudgeted, image)]  # photos: every tile, no budget


def test_hand_search_mode_is_checked_before_the_camera_opens() -> None:
    from rnn_jax.errors import ConfigError
    from rnn_jax.live.settings import finder_config

    assert finder_config("light").idle_palm_rate < finder_config("balanced").idle_palm_rate
    assert finder_config("every-frame").idle_palm_rate is None
    with pytest.raises(ConfigError, match="hand search must be one of"):
        finder_config("fastest")
    from rnn_jax.hands import FinderConfig

    with pytest.raises(ValueError, match="idle_palm_rate"):
        FinderConfig(idle_palm_rate=0.0)
    with pytest.raises(ValueError, match="reject_memory"):
        FinderConfig(reject_memory=-1)
    with pytest.raises(ValueError, match="palm_reserve"):
        FinderConfig(palm_reserve=3.5)  # routine looks need 1 + reserve <= palm_burst (4) tokens
    # the budget's fields stay out of the repr that keys the HaGRID photo cache (photos never use them)
    assert repr(FinderConfig()) == repr(FinderConfig(idle_palm_rate=None, search_lag=1, reject_memory=0))


class _WorkerGate:
    """A palm session whose runs on the finder's search worker wait for ``open`` (a search beside
    the loop that has not finished yet, however slow the machine); other threads pass through."""

    def __init__(self, session) -> None:
        import threading

        self.session, self.open = session, threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.session, name)

    def run(self, *args, **kwargs):
        import threading

        if threading.current_thread().name.startswith("palm-search"):
            assert self.open.wait(30), "the test never opened the gate"
        return self.session.run(*args, **kwargs)


def _finishes(call, seconds: float = 20.0):
    """call() on a thread; its result, failing the test if it does not return in time (a frame waiting
    for a search that cannot finish would hang)."""
    import threading

    box: list = []
    worker = threading.Thread(target=lambda: box.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert box, "find() waited for the search beside the loop"
    return box[0]


def test_a_camera_frame_never_waits_for_the_search_beside_the_loop(hand_models: Path) -> None:
    """search_wait False (a camera): the frame a search is due on does not wait for it; its palms join
    the first frame after it finished. Palms searched in a picture that a new scene replaced are dropped."""
    from dataclasses import replace

    from rnn_jax.hands import HandFinder
    from rnn_jax.live.settings import finder_config

    photo = sorted(shared_data("sign-language-digits", "val", "5").iterdir())[0]
    image = pad_for_detection(cv2.imread(str(photo)))
    room = np.full((480, 640, 3), 90, np.uint8)
    entered = room.copy()
    entered[120 : 120 + image.shape[0], 200 : 200 + image.shape[1]] = image
    base = HandFinder.load(hand_models)
    (hand,) = base.find(entered)  # where the hand is (the search on the frame itself)

    def camera_in_a_still_room() -> tuple[HandFinder, _WorkerGate]:
        gate = _WorkerGate(base.palm_session)
        camera = HandFinder(gate, base.landmark_session, replace(finder_config("balanced"), search_wait=False),
                            base.face_session)
        gate.open.set()
        for _ in range(40):  # the first frame's new scene, looked at in full (frames here come faster than a
            assert camera.find(room) == []  # palm run: each search is let finish, then joins a frame)
            if camera._pending is None:
                break
            camera._executor.submit(lambda: None).result(30)
        assert camera._pending is None
        gate.open.clear()
        return camera, gate

    camera, gate = camera_in_a_still_room()
    assert _finishes(lambda: camera.find(entered)) == []  # the hand appeared: a look around it, beside the loop
    assert _finishes(lambda: camera.find(entered)) == []  # due now, not finished: the frame goes on without it
    gate.open.set()
    camera._executor.submit(lambda: None).result(30)  # the search finishes...
    (later,) = camera.find(entered)  # ... and its palm joins the next frame
    np.testing.assert_allclose(later.box, hand.box, atol=3)
    camera.close()

    # a search still running when a new scene comes: its palm (of the old picture) gets no landmark run
    camera, gate = camera_in_a_still_room()
    assert _finishes(lambda: camera.find(entered)) == []  # search started on this picture
    dark = np.full_like(room, 10)
    assert _finishes(lambda: camera.find(dark)) == []  # a new scene; the search is still running
    gate.open.set()
    camera._executor.submit(lambda: None).result(30)
    runs = camera.stats.landmark_runs
    assert camera.find(dark) == []
    assert camera.stats.landmark_runs == runs  # the hand's palm from the gone picture was dropped
    camera.close()


def test_a_camera_gets_a_finder_whose_frames_never_wait(hand_models: Path) -> None:
    """Cameras and streams (and files played with --pace) get search_wait False; files as fast as the
    loop goes keep waiting for their searches, so every run over a file finds the same hands."""
    from rnn_jax.live.settings import make_finder

    assert make_finder(True, None, hand_models, live=True).config.search_wait is False
    assert make_finder(True, None, hand_models).config.search_wait is True


def test_small_hands_appearing_in_a_moving_scene_are_found_at_once(hand_models: Path, tmp_path: Path) -> None:
    """Real hands (HaGRID val, 70-140 px wide) pasted six times into Megamind's no-hand shots (a man
    talking, a face close-up): each is found within 6 frames (200 ms at 30 fps), because where it
    appeared is looked at closely (hot_margin). In the tile that holds it, the two smallest were not
    found within 30 frames."""
    from dataclasses import replace

    from rnn_jax.hands import HandFinder
    from rnn_jax.live.settings import finder_config
    from tools.benchkit.budget_counts import entries_found, entry_video
    from tools.benchkit.finder_probe import decode
    from tools.benchkit.live_budget import megamind_no_hand

    scene = megamind_no_hand(shared_data("video", "Megamind.avi"), tmp_path / "scene.avi")
    made = entry_video(scene, shared_data("hagrid-sample"), tmp_path / "entry.avi")
    assert made is not None
    frames = decode(made[0], None)
    base = HandFinder.load(hand_models)

    def found(config) -> list[int | None]:
        finder = HandFinder(base.palm_session, base.landmark_session, config, base.face_session)
        centres = [[(h.box[0] + h.box[2] / 2, h.box[1] + h.box[3] / 2) for h in finder.find(f)] for f in frames]
        finder.close()
        return entries_found(centres, made[1])

    now = found(finder_config("balanced"))
    assert all(k is not None and k <= 6 for k in now), now
    tile = found(replace(finder_config("balanced"), hot_margin=None))
    assert sum(k is None for k in tile) == 2, tile
