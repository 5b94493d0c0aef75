"""Find hands in frames: palm detection, 21 landmarks, tracking between frames, one crop rule.

Per frame: hands tracked from the previous frame get their landmark square from last
frame's landmarks (no palm model); the palm detector runs only when no hand is tracked,
or every ``redetect_every`` frames while fewer than ``max_hands`` are tracked. Each square
goes through the landmark model; a hand whose presence score drops below
``min_presence`` is lost. :func:`hand_crop` is the one rule that turns a hand (or an
annotated box) into the classifier's input, for training and live alike.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from rnn_jax.hands.crop import Box
from rnn_jax.hands.geometry import (
    Palm,
    Rect,
    decode_palms,
    iou_cxcywh,
    letterbox_rgb,
    rect_from_landmarks,
    rect_from_palm,
    warp_square,
    weighted_nms,
)
from rnn_jax.hands.models import LANDMARK_SIZE, PALM_SIZE, open_models

LANDMARK_MARGIN = 1.15  # landmarks are joint centres: widen their box to cover the skin


@dataclass(frozen=True, eq=False)
class Hand:
    """One hand in a frame."""

    landmarks: np.ndarray  # (21, 3) x, y in frame pixels; z relative depth (same scale)
    presence: float  # landmark model's "a hand is in the square" score, 0..1
    handedness: str  # "right" or "left", as the landmark model labels it (mirrored-selfie convention)
    handedness_score: float  # probability of ``handedness``
    rect: Rect  # the rotated square the landmarks were found in
    track_id: int  # stays the same while the hand is tracked
    tracked: bool  # True = found from last frame's landmarks, False = from a palm detection
    frame_size: tuple[int, int] = (0, 0)  # (width, height) of the frame

    @property
    def box(self) -> tuple[float, float, float, float]:
        """Axis-aligned box around the hand in frame pixels (x, y, w, h), widened to the skin."""
        lo, hi = self.landmarks[:, :2].min(0), self.landmarks[:, :2].max(0)
        centre, size = (lo + hi) / 2, (hi - lo) * LANDMARK_MARGIN
        return (float(centre[0] - size[0] / 2), float(centre[1] - size[1] / 2), float(size[0]), float(size[1]))

    def normalised_box(self) -> Box:
        """:attr:`box` as a normalised COCO box (what the data cache stores)."""
        w, h = self.frame_size
        x, y, bw, bh = self.box
        return (x / w, y / h, bw / w, bh / h)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.track_id, "box": [round(v, 1) for v in self.box],
                "landmarks": np.round(self.landmarks, 1).tolist(), "presence": round(self.presence, 4),
                "handedness": self.handedness, "handedness_score": round(self.handedness_score, 4),
                "tracked": self.tracked}


@dataclass
class FinderConfig:
    """Knobs of the hand finder (defaults suit a webcam at arm's length)."""

    max_hands: int = 2
    min_palm_score: float = 0.5
    min_presence: float = 0.5
    redetect_every: int = 10  # frames between palm searches while some (not all) hands are tracked
    nms_iou: float = 0.3
    same_hand_iou: float = 0.4  # a palm overlapping a tracked hand this much is that hand


@dataclass
class _Timing:
    palm_runs: int = 0
    landmark_runs: int = 0
    frames: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class HandFinder:
    """Stateful hand finder over a sequence of frames (call :meth:`find` once per frame)."""

    def __init__(self, palm: ort.InferenceSession, landmark: ort.InferenceSession,
                 config: FinderConfig | None = None) -> None:
        self.palm_session, self.landmark_session = palm, landmark
        self.config = config or FinderConfig()
        if self.config.max_hands < 1:
            raise ValueError(f"max_hands must be >= 1, got {self.config.max_hands}")
        self._palm_in = palm.get_inputs()[0].name
        self._lm_in = landmark.get_inputs()[0].name
        self._tracked: list[Hand] = []
        self._ids = itertools.count()
        self.stats = _Timing()

    @classmethod
    def load(cls, model_dir: str | Path | None = None, threads: int | None = 1,
             config: FinderConfig | None = None) -> HandFinder:
        """Open the models in ``model_dir`` (default ``$RNN_JAX_HANDS`` or ~/.cache/rnn-jax/hands)."""
        palm, landmark = open_models(model_dir, threads)
        return cls(palm, landmark, config)

    def reset(self) -> None:
        """Forget tracked hands (next frame starts with a palm search)."""
        self._tracked = []

    # ------------------------------------------------------------------ models
    def detect_palms(self, frame_rgb: np.ndarray) -> list[Palm]:
        """Palm detector on the whole frame (letterboxed to 192 px, pixels scaled to 0..1).

        (0..1, not -1..1: with -1..1 this model's logits run into the hundreds on every photo.)
        """
        square, box = letterbox_rgb(frame_rgb, PALM_SIZE)
        x = (square.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1)[None]
        raw, logits = self.palm_session.run(None, {self._palm_in: np.ascontiguousarray(x)})
        self.stats.palm_runs += 1
        candidates = decode_palms(raw[0], logits[0], box, self.config.min_palm_score)
        return weighted_nms(candidates, self.config.nms_iou, max_out=self.config.max_hands)

    def landmarks_in(self, frame_rgb: np.ndarray, rect: Rect) -> tuple[np.ndarray, float, float]:
        """Landmark model on one rotated square -> (21x3 frame-pixel landmarks, presence, right-hand prob)."""
        patch = warp_square(frame_rgb, rect, LANDMARK_SIZE)
        x = (patch.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1)[None]
        coords, presence, right, _world = self.landmark_session.run(None, {self._lm_in: np.ascontiguousarray(x)})
        self.stats.landmark_runs += 1
        pts = coords.reshape(21, 3).astype(np.float64) / LANDMARK_SIZE
        xy = rect.to_frame(pts[:, :2])
        z = pts[:, 2:3] * rect.side
        return np.concatenate([xy, z], 1), float(presence.reshape(-1)[0]), float(right.reshape(-1)[0])

    # ------------------------------------------------------------------- frame
    def find(self, frame: np.ndarray, colour: str = "bgr") -> list[Hand]:
        """All hands in ``frame`` (at most ``max_hands``), tracked ones keeping their ``track_id``."""
        if frame.ndim == 2 or frame.shape[2] == 1:
            rgb = cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if colour == "bgr" else frame
        height, width = rgb.shape[:2]
        cfg = self.config
        self.stats.frames += 1
        candidates: list[tuple[Rect, int, bool]] = [
            (rect_from_landmarks(h.landmarks), h.track_id, True) for h in self._tracked]
        search = not self._tracked or (
            len(self._tracked) < cfg.max_hands and self.stats.frames % cfg.redetect_every == 0)
        if search:
            tracked_boxes = [np.array(_cxcywh(h.box)) for h in self._tracked]
            for palm in self.detect_palms(rgb):
                if any(iou_cxcywh(palm.box, b[None])[0] > cfg.same_hand_iou for b in tracked_boxes):
                    continue
                candidates.append((rect_from_palm(palm), -1, False))
        hands: list[Hand] = []
        for rect, track_id, tracked in candidates:
            if len(hands) >= cfg.max_hands:
                break
            landmarks, presence, right = self.landmarks_in(rgb, rect)
            if presence < cfg.min_presence:
                continue
            hand = Hand(landmarks, presence, "right" if right >= 0.5 else "left", max(right, 1 - right),
                        rect, track_id if track_id >= 0 else next(self._ids), tracked, (width, height))
            box = np.array(_cxcywh(hand.box))
            if any(iou_cxcywh(box, np.array(_cxcywh(o.box))[None])[0] > cfg.same_hand_iou for o in hands):
                continue  # two squares converged on one hand
            hands.append(hand)
        self._tracked = hands
        return hands


def _cxcywh(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return (x + w / 2, y + h / 2, w, h)


def find_hands_in_image(finder: HandFinder, image_rgb: np.ndarray) -> list[Hand]:
    """Hands in one still picture (no tracking): palm search, then landmarks."""
    finder.reset()
    hands = finder.find(image_rgb, colour="rgb")
    finder.reset()
    return hands
