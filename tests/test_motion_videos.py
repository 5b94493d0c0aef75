"""tools/motion_videos.py (the pixel-level check): a rendered video says its rate, lasts its script, and
moves the pasted hand the user's way (camera pixels are the mirror of the user's view)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import motion_videos as mv  # noqa: E402


def fake_crops() -> dict[str, list]:
    white = np.full((mv.HAND_PX, mv.HAND_PX, 3), 255, np.uint8)
    background = np.zeros((mv.FRAME[1], mv.FRAME[0], 3), np.uint8)
    crop = mv.Crop(white, background, "palm", "someone")
    return {g: [crop] for g in ("open", "one", "two", "fist", "L", "any")}


def read(path: Path) -> tuple[float, list[np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    fps, frames = cap.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return fps, frames


@pytest.mark.parametrize("fps", [15.0, 30.0])
def test_a_swipe_left_moves_right_in_camera_pixels(tmp_path: Path, fps: float) -> None:
    g = next(x for x in mv.GESTURES if x.name == "swipe_left (open)")
    info = mv.render(g, fake_crops(), fps, tmp_path / "v.avi", np.random.default_rng(0))
    got_fps, frames = read(tmp_path / "v.avi")
    assert mv.PACE[0] * g.seconds <= info["seconds"] <= mv.PACE[1] * g.seconds
    assert got_fps == pytest.approx(fps) and len(frames) == info["frames"] == round(
        (mv.HOLD_BEFORE + info["seconds"] + mv.HOLD_AFTER) * fps)

    def x_of(frame: np.ndarray) -> float:
        ys, xs = np.nonzero(frame[..., 0] > 128)
        return float(xs.mean())
    assert x_of(frames[-1]) - x_of(frames[0]) > 0.4 * mv.FRAME[0]  # the user's left = camera right


def test_two_hand_zoom_in_moves_the_hands_apart(tmp_path: Path) -> None:
    g = next(x for x in mv.GESTURES if x.name.startswith("zoom_in"))
    mv.render(g, fake_crops(), 15.0, tmp_path / "z.avi", np.random.default_rng(1))
    _, frames = read(tmp_path / "z.avi")

    def spread(frame: np.ndarray) -> float:
        xs = np.nonzero(frame[..., 0] > 128)[1]
        return float(xs.max() - xs.min())
    assert spread(frames[-1]) > spread(frames[0]) + 150


def test_tune_and_report_split_the_val_people(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rnn_jax.data.hagrid.prepare as prepare

    photo = tmp_path / "p.jpg"
    cv2.imwrite(str(photo), np.full((120, 160, 3), 200, np.uint8))
    people = [f"user{i:02d}" for i in range(6)]
    photos = [(photo, {"boxes": [(0.3, 0.3, 0.3, 0.3)], "labels": ("palm",), "user": u}) for u in people for _ in range(2)]
    monkeypatch.setattr(prepare, "annotated_photos", lambda root, pool: photos)
    users = {split: {c.user for c in mv.load_crops(tmp_path, split)["any"]} for split in mv.SPLITS}
    assert users["tune"] and users["report"] and not users["tune"] & users["report"]
    assert users["tune"] | users["report"] == users["all"] == set(people)


def test_stored_hands_come_back_as_they_were(tmp_path: Path) -> None:
    from rnn_jax.hands.finder import Hand
    from rnn_jax.hands.geometry import Rect

    def h(t: int, x: float) -> Hand:
        pts = np.random.default_rng(t).normal(x, 20, (21, 3)).astype(np.float32)
        return Hand(pts, 0.9, "left" if t % 2 else "right", 0.8, Rect(x, 100.0, 90.0, 0.1), t, bool(t % 2),
                    (640, 480))
    seen = [(0, 0.0, [h(1, 100.0)], (480, 640, 3)), (1, 1 / 15, [], (480, 640, 3)),
            (2, 2 / 15, [h(1, 120.0), h(2, 300.0)], (480, 640, 3))]
    mv.save_hands(tmp_path / "h.npz", seen)
    back = mv.load_hands(tmp_path / "h.npz")
    assert [(i, t, s) for i, t, _, s in back] == [(i, pytest.approx(t), s) for i, t, _, s in seen]
    for (_, _, a, _), (_, _, b, _) in zip(seen, back):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert np.array_equal(x.landmarks, y.landmarks) and x.rect == y.rect and x.track_id == y.track_id
            assert x.presence == pytest.approx(y.presence) and x.handedness_score == pytest.approx(y.handedness_score)
            assert (x.handedness, x.tracked, x.frame_size) == (y.handedness, y.tracked, y.frame_size)
