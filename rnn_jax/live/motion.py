"""Dynamic gestures in the live loop: a motion model's runtime per tracked hand (numpy only).

The features it feeds the model are the one motion feature rule of
:mod:`rnn_jax.hands.motion_features` (the same as training). A motion model's ONNX file is a
landmark model (:mod:`rnn_jax.runtime.landmark_predictor`) whose metadata ``features`` say
``{"rule": "motion", ...}``; its state is the model's own memory (for the window model: the last
frames' embeddings). :class:`MotionModel` keeps, per tracked hand, that state and the previous
frame, both dropped when the hand is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnn_jax.errors import ConfigError, ModelFileError
from rnn_jax.hands.motion_features import (
    MOTION_FEATURE_VERSION,
    RULE,
    is_motion_info,
    motion_features,
    view_coords,
)
from rnn_jax.live.smoothing import GestureConfig, GestureTracker, SmoothingConfig

# classes that never start an event: the hand held still, and "no motion gesture"
MOTION_BACKGROUND = ("still", "no_motion")
DEFAULT_MOTION_GESTURE = GestureConfig(SmoothingConfig("ema", alpha=0.6), threshold=0.6, stable_frames=2)
# frames a hand must have been tracked before its motion may start an event: the hand finder's
# false and short-lived hands come and go within a few frames, with landmarks that jump
DEFAULT_MIN_TRACK_AGE = 8


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
        from rnn_jax.runtime.landmark_predictor import LandmarkPredictor, is_landmark_model

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
