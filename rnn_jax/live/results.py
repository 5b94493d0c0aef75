"""What the live loop produces: one record per frame (and per hand), and the end-of-run summary.

Plain data, kept apart from the loop so the overlay, the CLI, tools and tests can read records
without the classifiers or onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rnn_jax.live.smoothing import GestureEvent

if TYPE_CHECKING:
    from rnn_jax.hands import Hand

NO_HAND = "no hand"  # top_label of a frame without a hand (hands on)


@dataclass(frozen=True, eq=False)
class HandResult:
    """One hand on one frame (hands on): where it is and what its crop was classified as."""

    hand: Hand
    label: str | None  # this hand's stable gesture, None = no gesture
    top_label: str
    confidence: float
    probabilities: np.ndarray  # smoothed [K]
    crop: tuple[int, int, int]  # (left, top, side) of the square the classifier saw
    trail: np.ndarray | None = None  # [n, 2] the tracked point (index fingertip) on the last frames, oldest first
    motion: str | None = None  # the motion model's active dynamic gesture on this hand (--motion)
    motion_top: str | None = None  # its top class (may be below its threshold); None = no motion model
    motion_confidence: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = {**self.hand.to_json(), "label": self.label, "top_label": self.top_label,
               "confidence": round(self.confidence, 4), "crop": list(self.crop)}
        if self.motion_top is not None:
            out.update(motion=self.motion, motion_top=self.motion_top,
                       motion_confidence=round(self.motion_confidence, 4))
        return out


@dataclass(frozen=True, eq=False)
class FrameResult:
    """One processed frame."""

    frame: np.ndarray  # the BGR frame as read from the source (not mirrored)
    index: int  # 0-based frame number
    label: str | None  # the stable gesture shown on this frame; None = no gesture
    top_label: str  # top class after smoothing (may be below the threshold)
    confidence: float  # smoothed probability of top_label
    probabilities: np.ndarray  # smoothed probabilities [K]
    raw_probabilities: np.ndarray  # this frame's model output (softmax) [K]
    latency_ms: float  # model only: cast + onnxruntime run + softmax
    loop_ms: float  # wall time since the previous record (whole loop incl. the consumer's work)
    time_s: float  # seconds since the stream started
    events: tuple[GestureEvent, ...]  # gesture started/ended on this frame (usually empty)
    roi: tuple[int, int, int] | None  # (left, top, side) classified, None = whole frame
    class_names: tuple[str, ...]
    hands: tuple[HandResult, ...] | None = None  # None = hands off; () = no hand in view
    hands_ms: float = 0.0  # hand finding (palm/landmark models, tracking) on this frame
    actions: tuple[dict[str, Any], ...] | None = None  # None = no actions mapped; fired/skipped/finished

    def to_json(self) -> dict[str, Any]:
        """One JSONL line: frame, label (null = no gesture), confidence, latency_ms, ...

        With hands on, ``hands`` lists each hand (box, 21 landmarks, handedness, its label).
        """
        extra: dict[str, Any] = {}
        if self.hands is not None:
            extra = {"hands": [h.to_json() for h in self.hands], "hands_ms": round(self.hands_ms, 3)}
        if self.actions is not None:
            extra["actions"] = list(self.actions)
        return {
            "frame": self.index,
            "time_s": round(self.time_s, 4),
            "label": self.label,
            "top_label": self.top_label,
            "confidence": round(self.confidence, 4),
            "latency_ms": round(self.latency_ms, 3),
            "loop_ms": round(self.loop_ms, 3),
            "probabilities": {n: round(float(p), 4) for n, p in zip(self.class_names, self.probabilities, strict=True)},
            "roi": list(self.roi) if self.roi else None,
            "events": [e.to_dict() for e in self.events],
            **extra,
        }


@dataclass(frozen=True)
class RunSummary:
    """End-of-run numbers (printed after every live run)."""

    frames: int
    seconds: float  # sum of loop times (pauses excluded)
    mean_fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    loop_p50_ms: float
    loop_p95_ms: float
    gestures: dict[str, tuple[int, int]]  # label -> (times started, frames shown)
    no_gesture_frames: int
    skipped_files: int = 0  # image files of the source that could not be decoded
    hand_frames: int | None = None  # frames with at least one hand (None = hands off)
    hands_p50_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["gestures"] = {k: {"started": s, "frames": f} for k, (s, f) in self.gestures.items()}
        return out

    def format(self) -> str:
        lines = [
            f"summary: {self.frames} frames in {self.seconds:.2f} s, mean {self.mean_fps:.1f} FPS",
            f"  model latency   p50 {self.latency_p50_ms:7.2f} ms   p95 {self.latency_p95_ms:7.2f} ms",
            f"  loop per frame  p50 {self.loop_p50_ms:7.2f} ms   p95 {self.loop_p95_ms:7.2f} ms",
        ]
        if self.gestures:
            shown = ", ".join(f"{k} x{s} ({f} frames)" for k, (s, f) in
                              sorted(self.gestures.items(), key=lambda kv: (-kv[1][0], kv[0])))
            lines.append(f"  gestures: {shown}")
        else:
            lines.append("  gestures: none shown")
        lines.append(f"  no gesture on {self.no_gesture_frames} of {self.frames} frames")
        if self.skipped_files:
            lines.append(f"  skipped {self.skipped_files} file(s) that could not be decoded as images")
        if self.hand_frames is not None:
            lines.append(f"  hands seen on {self.hand_frames} of {self.frames} frames; "
                         f"hand finding p50 {self.hands_p50_ms:.2f} ms")
        return "\n".join(lines)


class RunStats:
    """Accumulates per-frame timings and gesture counts for :class:`RunSummary`."""

    def __init__(self) -> None:
        self.latency_ms: list[float] = []
        self.loop_ms: list[float] = []
        self.started: dict[str, int] = {}
        self.frames_shown: dict[str, int] = {}
        self.no_gesture = 0
        self.hand_frames: int | None = None
        self.hands_ms: list[float] = []

    def add(self, rec: FrameResult) -> None:
        self.latency_ms.append(rec.latency_ms)
        self.loop_ms.append(rec.loop_ms)
        if rec.hands is not None:
            self.hand_frames = (self.hand_frames or 0) + bool(rec.hands)
            self.hands_ms.append(rec.hands_ms)
        if rec.label is None:
            self.no_gesture += 1
        else:
            self.frames_shown[rec.label] = self.frames_shown.get(rec.label, 0) + 1
        for event in rec.events:
            if event.kind == "started":
                self.started[event.label] = self.started.get(event.label, 0) + 1

    def summary(self) -> RunSummary:
        n = len(self.loop_ms)
        seconds = float(np.sum(self.loop_ms)) / 1000.0 if n else 0.0
        lat = np.percentile(self.latency_ms, [50, 95]) if n else (float("nan"),) * 2
        loop = np.percentile(self.loop_ms, [50, 95]) if n else (float("nan"),) * 2
        labels = set(self.started) | set(self.frames_shown)
        return RunSummary(
            frames=n, seconds=seconds, mean_fps=n / seconds if seconds > 0 else 0.0,
            latency_p50_ms=float(lat[0]), latency_p95_ms=float(lat[1]),
            loop_p50_ms=float(loop[0]), loop_p95_ms=float(loop[1]),
            gestures={k: (self.started.get(k, 0), self.frames_shown.get(k, 0)) for k in sorted(labels)},
            no_gesture_frames=self.no_gesture, hand_frames=self.hand_frames,
            hands_p50_ms=float(np.percentile(self.hands_ms, 50)) if self.hands_ms else None)

