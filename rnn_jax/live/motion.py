"""Dynamic gestures (swipes, zoom, circles) from the tracked hand, frame by frame (numpy only).

The one **motion feature rule**, shared by training (:mod:`rnn_jax.data.motion`), export and
the live loop, and the live runtime of a motion model (:class:`MotionModel`).

Coordinates: the **user's view** (the mirrored, selfie picture: what the user sees on screen,
so "swipe left" is the user's left and "clockwise" is clockwise as the user draws it), in
units of the frame's short side; y points down. The live loop gets camera pixels and turns
them into the user's view with :func:`view_coords`.

Features of one frame, packed into the [21, 3] frame the landmark exporter and runtime carry:

- ``[:, 0:2]`` the hand's pose: wrist-relative, divided by the hand's size (largest
  wrist-to-landmark distance), in the user's view (not mirrored by handedness: a circle's sense
  must survive);
- ``[:, 2]`` a motion vector (from this frame and the previous one, which the caller carries):
  0-1 index fingertip velocity, 2-3 wrist velocity, 4-5 velocity of the landmarks' mean (all
  x ``VELOCITY_SCALE`` per frame), 6 change of log hand size (x 10; towards / away from the
  camera), 7 hand size (x 4), 8 thumb-index tip distance / hand size, 9 its change (x 10),
  10 whether a previous frame exists (1) or not (0: the velocities are 0); 11-20 zero.

A motion model's ONNX file is a landmark model (:mod:`rnn_jax.runtime.landmarks`) whose
metadata ``features`` say ``{"rule": "motion", ...}``; its state is the model's own memory
(for the window model: the last frames' embeddings). :class:`MotionModel` keeps, per tracked
hand, that state and the previous frame, both dropped when the hand is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnn_jax.errors import ConfigError, ModelFileError
from rnn_jax.live.smoothing import GestureConfig, GestureTracker, SmoothingConfig

RULE = "motion"
MOTION_FEATURE_VERSION = 1
VELOCITY_SCALE = 20.0  # a move of half the short side in 10 frames -> 1.0 per frame
INDEX_TIP, THUMB_TIP, WRIST = 8, 4, 0
MOTION_CLASSES = ("swipe_left", "swipe_right", "swipe_up", "swipe_down", "zoom_in", "zoom_out",
                  "circle_cw", "circle_ccw", "still", "no_motion")
# classes that never start an event: the hand held still, and "no motion gesture"
MOTION_BACKGROUND = ("still", "no_motion")
DEFAULT_MOTION_GESTURE = GestureConfig(SmoothingConfig("ema", alpha=0.6), threshold=0.6, stable_frames=2)
# frames a hand must have been tracked before its motion may start an event: the hand finder's
# false and short-lived hands come and go within a few frames, with landmarks that jump
DEFAULT_MIN_TRACK_AGE = 8


def feature_spec() -> dict[str, Any]:
    """The ``features`` entry of a motion model's metadata."""
    return {"rule": RULE, "version": MOTION_FEATURE_VERSION, "velocity_scale": VELOCITY_SCALE,
            "coords": "user view (mirrored camera), units of the frame's short side"}


def is_motion_info(info: Any) -> bool:
    features = getattr(info, "features", None)
    return isinstance(features, dict) and features.get("rule") == RULE


def view_coords(landmarks: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Camera-pixel landmarks [..., 21, >=2] of a (width, height) frame -> the user's view [..., 21, 2]."""
    w, h = frame_size
    if w <= 0 or h <= 0:
        raise ValueError(f"frame size must be positive, got {frame_size}")
    pts = np.asarray(landmarks, np.float64)[..., :2].copy()
    pts[..., 0] = w - pts[..., 0]
    return pts / float(min(w, h))


def _pose(view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rel = view - view[..., :1, :]
    size = np.sqrt((rel ** 2).sum(-1)).max(-1)
    return rel / np.maximum(size, 1e-9)[..., None, None], size


def motion_features(view: np.ndarray, prev: np.ndarray | None = None) -> np.ndarray:
    """User-view frames [..., 21, 2] (and the frames before them, same shape, or None = no previous
    frame) -> packed features [..., 21, 3] float32 (see the module docstring)."""
    cur = np.asarray(view, np.float64)
    if cur.shape == (21, 2):  # the live loop's case: one hand, one frame (fewer numpy calls)
        return _frame_features(cur, None if prev is None else np.asarray(prev, np.float64))
    if cur.shape[-2:] != (21, 2):
        raise ValueError(f"view landmarks must be [..., 21, 2], got {list(cur.shape)}")
    pose, size = _pose(cur)
    out = np.zeros(cur.shape[:-1] + (3,), np.float64)
    out[..., :2] = pose
    m = out[..., 2]
    spread = np.sqrt(((pose[..., INDEX_TIP, :] - pose[..., THUMB_TIP, :]) ** 2).sum(-1))
    m[..., 7] = 4.0 * size
    m[..., 8] = spread
    if prev is not None:
        before = np.asarray(prev, np.float64)
        ppose, psize = _pose(before)
        pspread = np.sqrt(((ppose[..., INDEX_TIP, :] - ppose[..., THUMB_TIP, :]) ** 2).sum(-1))
        v = VELOCITY_SCALE
        m[..., 0:2] = v * (cur[..., INDEX_TIP, :] - before[..., INDEX_TIP, :])
        m[..., 2:4] = v * (cur[..., WRIST, :] - before[..., WRIST, :])
        m[..., 4:6] = v * (cur.mean(-2) - before.mean(-2))
        m[..., 6] = 10.0 * np.log(np.maximum(size, 1e-6) / np.maximum(psize, 1e-6))
        m[..., 9] = 10.0 * (spread - pspread)
        m[..., 10] = 1.0
        m[..., :10] = np.clip(m[..., :10], -10.0, 10.0)  # a tracker jump is not a gesture
    return out.astype(np.float32)


def _frame_features(cur: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
    """:func:`motion_features` of one frame [21, 2] (same numbers, ~4x faster)."""
    rel = cur - cur[0]
    size = max(float(np.sqrt((rel * rel).sum(1).max())), 1e-9)
    out = np.zeros((21, 3), np.float64)
    out[:, :2] = rel / size
    dx, dy = out[INDEX_TIP, :2] - out[THUMB_TIP, :2]
    spread = (dx * dx + dy * dy) ** 0.5
    m = out[:, 2]
    m[7], m[8] = 4.0 * size, spread
    if prev is not None:
        prel = prev - prev[0]
        psize = max(float(np.sqrt((prel * prel).sum(1).max())), 1e-9)
        pdx, pdy = (prel[INDEX_TIP] - prel[THUMB_TIP]) / psize
        v = VELOCITY_SCALE
        m[0:2] = v * (cur[INDEX_TIP] - prev[INDEX_TIP])
        m[2:4] = v * (cur[WRIST] - prev[WRIST])
        m[4:6] = v * (cur.mean(0) - prev.mean(0))
        m[6] = 10.0 * np.log(max(size, 1e-6) / max(psize, 1e-6))
        m[9] = 10.0 * (spread - (pdx * pdx + pdy * pdy) ** 0.5)
        m[10] = 1.0
        np.clip(m[:10], -10.0, 10.0, out=m[:10])
    return out.astype(np.float32)


def sequence_features(view: np.ndarray, first_has_prev: bool = False) -> np.ndarray:
    """A sequence [T, 21, 2] (or batch [B, T, 21, 2]) -> features [.., T, 21, 3], each frame with the one
    before it; frame 0 has none (unless ``first_has_prev``, where frame 0 is itself a context frame
    and the result has T - 1 frames)."""
    v = np.asarray(view, np.float64)
    if first_has_prev:
        return motion_features(v[..., 1:, :, :], v[..., :-1, :, :])
    first = motion_features(v[..., :1, :, :])
    if v.shape[-3] == 1:
        return first
    rest = motion_features(v[..., 1:, :, :], v[..., :-1, :, :])
    return np.concatenate([first, rest], axis=-3)


class MotionModel:
    """A motion model in the live loop: per tracked hand, its state and the previous frame."""

    def __init__(self, predictor: Any, gesture: GestureConfig = DEFAULT_MOTION_GESTURE,
                 min_track_age: int = DEFAULT_MIN_TRACK_AGE) -> None:
        if min_track_age < 0:
            raise ConfigError(f"the motion model's minimum track age must be >= 0 frames, got {min_track_age}")
        if not is_motion_info(predictor.info):
            raise ModelFileError(f"{predictor.path} is not a motion model (its metadata features are not "
                                 f"rule '{RULE}'); train one with `python -m experiments.motion`")
        version = int(predictor.info.features.get("version", MOTION_FEATURE_VERSION))
        if version > MOTION_FEATURE_VERSION:
            raise ModelFileError(f"{predictor.path} uses motion features version {version}; upgrade rnn-jax")
        self.predictor = predictor
        self.gesture = gesture
        self.min_track_age = int(min_track_age)
        self.states: dict[int, np.ndarray] = {}
        self.previous: dict[int, np.ndarray] = {}
        self.ages: dict[int, int] = {}  # frames each present hand has been tracked, this one included

    @classmethod
    def load(cls, path: str | Path, threads: int | None = 1, threshold: float | None = None,
             stable_frames: int | None = None, smoothing: str | SmoothingConfig | None = None,
             min_track_age: int | None = None) -> MotionModel:
        """Load ``path``; ``threshold`` None = the file's reject_threshold, else the default (0.6);
        ``min_track_age`` None = :data:`DEFAULT_MIN_TRACK_AGE`."""
        from rnn_jax.runtime.landmarks import LandmarkPredictor, is_landmark_model

        if not Path(path).is_file():
            raise ModelFileError(f"motion model not found: {path}")
        if not is_landmark_model(path):
            raise ModelFileError(f"{path} is not a motion model (not an rnn-jax landmark model); train one "
                                 "with `python -m experiments.motion`")
        predictor = LandmarkPredictor.load(path, threads=threads)
        base = DEFAULT_MOTION_GESTURE
        if isinstance(smoothing, str):
            smoothing = SmoothingConfig.parse(smoothing)
        chosen = threshold if threshold is not None else predictor.info.reject_threshold
        gesture = GestureConfig(smoothing or base.smoothing, base.threshold if chosen is None else float(chosen),
                                stable_frames or base.stable_frames)
        return cls(predictor, gesture, DEFAULT_MIN_TRACK_AGE if min_track_age is None else min_track_age)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.predictor.class_names

    @property
    def gestures(self) -> tuple[str, ...]:
        """The classes that start events (the vocabulary without the background)."""
        return tuple(c for c in self.class_names if c not in MOTION_BACKGROUND)

    def tracker(self) -> GestureTracker:
        return GestureTracker(self.class_names, self.gesture, background=MOTION_BACKGROUND)

    def step(self, track_ids: list[int], views: np.ndarray) -> np.ndarray:
        """User-view landmarks [n, 21, 2] of this frame's hands -> probabilities [n, C]; states advanced,
        hands not in ``track_ids`` forgotten."""
        k = len(self.class_names)
        if not track_ids:
            self.reset()
            return np.zeros((0, k), np.float32)
        feats = np.stack([motion_features(v, self.previous.get(t)) for t, v in zip(track_ids, views, strict=True)])
        state = np.concatenate([self.states.get(t, self.predictor.initial_state(1)) for t in track_ids])
        probs, new_state = self.predictor.predict(feats, state)
        self.states = {t: new_state[i:i + 1] for i, t in enumerate(track_ids)}
        self.previous = {t: np.asarray(v, np.float64) for t, v in zip(track_ids, views, strict=True)}
        self.ages = {t: self.ages.get(t, 0) + 1 for t in track_ids}
        return probs

    def old_enough(self, track_id: int) -> bool:
        """Has this hand been tracked for ``min_track_age`` frames (this one included)? Only then may
        its motion start an event (its state is advanced from its first frame all the same)."""
        return self.ages.get(track_id, 0) >= self.min_track_age

    def classify(self, hands: list, frame_shape: tuple[int, ...]) -> np.ndarray:
        """This frame's hands (``rnn_jax.hands.Hand``) -> probabilities [len(hands), C]."""
        h, w = frame_shape[:2]
        views = np.stack([view_coords(hand.landmarks, (w, h)) for hand in hands]) if hands else np.zeros((0, 21, 2))
        return self.step([hand.track_id for hand in hands], views)

    def reset(self) -> None:
        self.states.clear()
        self.previous.clear()
        self.ages.clear()


def check_motion_model(predictor: Any, where: str) -> None:
    """The static classifier slot was given a motion model: say where it goes."""
    if is_motion_info(getattr(predictor, "info", None)):
        raise ConfigError(f"{where} is a motion model (dynamic gestures): run it beside a static model with "
                          "--motion, e.g. --onnx landmarks.onnx --motion motion.onnx")
