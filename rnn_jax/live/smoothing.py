"""Turn noisy per-frame probabilities into stable gestures and start/end events.

Pure numpy, no I/O, so every rule is testable on scripted probability sequences:

1. **Smoothing** (``--smoothing``) of the per-frame probabilities:
   ``none``; ``ema:A`` (exponential moving average, ``A`` in (0, 1] = weight of the newest
   frame, so ``ema:1`` = no smoothing and smaller A = steadier but slower); or ``vote:N``
   (majority vote of the per-frame top class over the last N frames; its probabilities
   are the mean over those frames).
2. **Threshold** (``--threshold``): if the smoothed confidence of the top class is below
   it, this frame shows "no gesture".
3. **Stability** (``--stable-frames``): a gesture *starts* only after it has been the top
   class above the threshold for that many consecutive frames; it *ends* on the first
   frame it is not (another class on top, or confidence below the threshold).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnn_jax.errors import ConfigError

SMOOTHING_HELP = "none | ema:A (0<A<=1, weight of the newest frame) | vote:N (N>=1 frames)"
DEFAULT_THRESHOLD = 0.6  # the live threshold when neither the user nor the model file gives one



NO_GESTURE_CLASSES = ("no_gesture",)  # HaGRID's label for a hand (or scene) without a gesture

@dataclass(frozen=True)
class SmoothingConfig:
    """How per-frame probabilities are smoothed; build from text with :meth:`parse`."""

    method: str = "ema"  # "none", "ema" or "vote"
    alpha: float = 0.5  # ema: weight of the newest frame
    window: int = 5  # vote: frames in the window

    def __post_init__(self) -> None:
        if self.method not in ("none", "ema", "vote"):
            raise ConfigError(f"unknown smoothing {self.method!r}; use {SMOOTHING_HELP}")
        if not 0.0 < self.alpha <= 1.0:
            raise ConfigError(f"ema weight must be in (0, 1], got {self.alpha}")
        if self.window < 1:
            raise ConfigError(f"vote window must be >= 1 frame, got {self.window}")

    @classmethod
    def parse(cls, text: str) -> SmoothingConfig:
        """``"none"``, ``"ema:0.6"`` or ``"vote:5"`` -> config (ConfigError if malformed)."""
        spec = text.strip().lower()
        method, _, arg = spec.partition(":")
        if method == "none" and not arg:
            return cls(method="none")
        if method in ("ema", "vote") and arg:
            try:
                number = float(arg) if method == "ema" else int(arg)
            except ValueError:
                number = None
            if number is not None:  # range checks (ConfigError) happen in __post_init__
                return cls(method="ema", alpha=number) if method == "ema" else cls(
                    method="vote", window=int(number))
        raise ConfigError(f"cannot read smoothing {text!r}; use {SMOOTHING_HELP}")

    def __str__(self) -> str:
        if self.method == "ema":
            return f"ema:{self.alpha:g}"
        if self.method == "vote":
            return f"vote:{self.window}"
        return "none"


@dataclass(frozen=True)
class GestureConfig:
    """All knobs of the gesture logic (validated, so a bad flag fails before the camera opens)."""

    # the defaults of rnn_jax.live and tools/live_accuracy.py when neither the user nor the model
    # file gives a value (rnn_jax.live.settings.resolve_gesture)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    threshold: float = DEFAULT_THRESHOLD
    stable_frames: int = 5

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.stable_frames < 1:
            raise ConfigError(f"stable frames must be >= 1, got {self.stable_frames}")


@dataclass(frozen=True)
class GestureEvent:
    """A gesture started or ended at ``frame``."""

    kind: str  # "started" or "ended"
    label: str
    frame: int
    confidence: float  # smoothed probability of ``label`` on that frame
    duration_frames: int = 0  # ended: on how many frames the gesture was active
    reason: str = ""  # ended: "changed", "low confidence", "reset", "end of stream" or "hand lost"
    hand: int | None = None  # with --hands: the hand's track id (events are per hand)
    dynamic: bool = False  # from the motion model (--motion): a gesture in motion, not a pose

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind, "label": self.label, "frame": self.frame,
                               "confidence": round(self.confidence, 4)}
        if self.hand is not None:
            out["hand"] = self.hand
        if self.dynamic:
            out["dynamic"] = True
        if self.kind == "ended":
            out["duration_frames"] = self.duration_frames
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, eq=False)
class GestureState:
    """What the gesture logic concluded on one frame."""

    label: str | None  # the active (stable) gesture, None = "no gesture"
    top_label: str  # top class of the smoothed probabilities (may be below threshold)
    top_index: int
    confidence: float  # smoothed probability of ``top_label``
    probabilities: np.ndarray  # smoothed probabilities [K]
    events: tuple[GestureEvent, ...] = ()


class Smoother:
    """Stateful smoothing of probability vectors (see :class:`SmoothingConfig`)."""

    def __init__(self, config: SmoothingConfig) -> None:
        self.config = config
        self._ema: np.ndarray | None = None
        self._window: deque[np.ndarray] = deque(maxlen=config.window)

    def reset(self) -> None:
        self._ema = None
        self._window.clear()

    def update(self, probs: np.ndarray) -> tuple[int, np.ndarray]:
        """Add one frame's probabilities; return (top class index, smoothed probabilities)."""
        p = np.asarray(probs, dtype=np.float64)
        method = self.config.method
        if method == "ema":
            a = self.config.alpha
            self._ema = p.copy() if self._ema is None else a * p + (1.0 - a) * self._ema
            return int(np.argmax(self._ema)), self._ema.copy()
        if method == "vote":
            self._window.append(p)
            mean = np.mean(self._window, axis=0)
            votes = Counter(int(np.argmax(q)) for q in self._window)
            most = max(votes.values())
            # Ties go to the tied class with the higher mean probability (deterministic).
            top = max((k for k, v in votes.items() if v == most), key=lambda k: mean[k])
            return top, mean
        return int(np.argmax(p)), p.copy()


class GestureTracker:
    """Smoothing + threshold + stability -> :class:`GestureState` and events, frame by frame."""

    def __init__(self, class_names: tuple[str, ...] | list[str], config: GestureConfig | None = None,
                 background: tuple[str, ...] = NO_GESTURE_CLASSES) -> None:
        self.class_names = tuple(class_names)
        self.config = config or GestureConfig()
        self.smoother = Smoother(self.config.smoothing)
        self.frame = -1  # index of the last frame seen
        self._active: int | None = None  # class index of the active gesture
        self._active_since = 0
        self._candidate: int | None = None  # top class above threshold (None = below)
        self._run = 0  # consecutive frames with this candidate
        self._last: np.ndarray | None = None  # last smoothed probabilities
        # a model trained with a "no gesture" class (HaGRID's no_gesture) saying so is not a gesture
        self._background = {i for i, name in enumerate(self.class_names) if name in background}

    def update(self, probs: np.ndarray, frame: int | None = None) -> GestureState:
        """Feed one frame's raw probabilities [K] (``frame`` defaults to the next index)."""
        if len(probs) != len(self.class_names):
            raise ValueError(f"got {len(probs)} probabilities for {len(self.class_names)} classes")
        self.frame = self.frame + 1 if frame is None else frame
        top, smoothed = self.smoother.update(probs)
        self._last = smoothed
        confidence = float(smoothed[top])
        candidate = top if confidence >= self.config.threshold and top not in self._background else None
        if candidate == self._candidate:
            self._run += 1
        else:
            self._candidate, self._run = candidate, 1
        events: list[GestureEvent] = []
        if self._active is not None and candidate != self._active:
            reason = "low confidence" if candidate is None else "changed"
            # The gesture was last active on the previous frame.
            events.append(self._end(reason, active_frames=self.frame - self._active_since))
        if candidate is not None and self._active is None and self._run >= self.config.stable_frames:
            self._active, self._active_since = candidate, self.frame
            events.append(GestureEvent("started", self.class_names[candidate], self.frame, confidence))
        return GestureState(self.active, self.class_names[top], top, confidence, smoothed, tuple(events))

    @property
    def active(self) -> str | None:
        """The gesture currently shown, or None."""
        return None if self._active is None else self.class_names[self._active]

    def _end(self, reason: str, active_frames: int) -> GestureEvent:
        assert self._active is not None
        confidence = float(self._last[self._active]) if self._last is not None else 0.0
        event = GestureEvent("ended", self.class_names[self._active], self.frame, confidence,
                             duration_frames=active_frames, reason=reason)
        self._active = None
        return event

    def reset(self) -> tuple[GestureEvent, ...]:
        """Forget all history (the 'r' key); ends the active gesture, if any."""
        events = self.finish("reset")
        self.smoother.reset()
        self._candidate, self._run, self._last = None, 0, None
        return events

    def finish(self, reason: str = "end of stream") -> tuple[GestureEvent, ...]:
        """Close the active gesture (stream ended), so every ``started`` has an ``ended``."""
        if self._active is None:
            return ()
        # Still active on the current frame, hence + 1.
        return (self._end(reason, active_frames=self.frame - self._active_since + 1),)
