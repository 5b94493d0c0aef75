"""The live loop as a small Python API (for notebooks, scripts and the CLI).

    from rnn_jax.live import iter_predictions
    with iter_predictions("student.onnx", "clip.avi", threshold=0.7) as stream:
        for rec in stream:
            print(rec.index, rec.label, rec.confidence, rec.latency_ms)
        print(stream.summary().format())

Each frame: read -> preprocess (rnn_jax.preprocess, via Predictor) -> model ->
smoothing/threshold/stability (rnn_jax.live.smoothing) -> one :class:`FrameRecord`.
With a hand finder (``hands=``, :mod:`rnn_jax.hands`): read -> find/track hands -> one
crop per hand (:func:`rnn_jax.hands.hand_crop`, the training rule) -> model (one batch) ->
smoothing per hand; no hand in view = no gesture.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnn_jax import preprocess
from rnn_jax.errors import ConfigError
from rnn_jax.live.actions import DEFAULT_COOLDOWN_S, DEFAULT_TIMEOUT_S, ActionRunner, build_runner
from rnn_jax.live.smoothing import GestureConfig, GestureEvent, GestureTracker, SmoothingConfig
from rnn_jax.live.sources import FrameSource, open_source
from rnn_jax.runtime.landmarks import load_predictor
from rnn_jax.runtime.predictor import Predictor

if TYPE_CHECKING:
    from rnn_jax.hands import Hand, HandFinder
    from rnn_jax.live.motion import MotionModel

NO_HAND = "no hand"  # top_label of a frame without a hand (hands on)
TRAIL_POINT = 8  # the tracked point drawn as a trail: the index fingertip (what motion data tracks)
TRAIL_FRAMES = 24
DEFAULT_THRESHOLD = 0.6  # the live threshold when neither the user nor the model file gives one


def resolve_threshold(threshold: float | None, info: object) -> float:
    """``--threshold``: the user's value, else the model's ``reject_threshold`` (chosen on validation
    at export), else :data:`DEFAULT_THRESHOLD`."""
    if threshold is not None:
        return float(threshold)
    chosen = getattr(info, "reject_threshold", None)
    return float(chosen) if chosen is not None else DEFAULT_THRESHOLD


def threshold_origin(threshold: float | None, info: object) -> str:
    """Where :func:`resolve_threshold`'s value came from, for the start-up line."""
    if threshold is not None:
        return "--threshold"
    return "model file" if getattr(info, "reject_threshold", None) is not None else "default"


def default_live_threads() -> int:
    """onnxruntime intra-op threads for the live loop: half the cores, at most 4.

    Why not all cores (onnxruntime's default): the loop also decodes camera/video
    frames, converts colour and draws the display on this machine, and onnxruntime's
    idle worker threads spin-wait and steal those cores. A batch-1 student on a
    small image stops getting faster beyond ~4 threads, so more only adds jitter.
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class LiveConfig:
    """Everything that shapes the live loop apart from the model and the source."""

    gesture: GestureConfig = field(default_factory=GestureConfig)
    roi: bool | None = None  # classify the centred square; None = on iff crop_mode == "hand"
    roi_fraction: float = 0.6  # side of the centred square as a fraction of the short side
    max_frames: int | None = None  # stop after this many frames (None = until the source ends)

    def __post_init__(self) -> None:
        if not 0.05 <= self.roi_fraction <= 1.0:
            raise ConfigError(f"roi size must be a fraction in [0.05, 1], got {self.roi_fraction}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max frames must be >= 1, got {self.max_frames}")


@dataclass(frozen=True, eq=False)
class HandRecord:
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
class FrameRecord:
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
    hands: tuple[HandRecord, ...] | None = None  # None = hands off; () = no hand in view
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

    def add(self, rec: FrameRecord) -> None:
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


class PredictionStream:
    """Iterator of :class:`FrameRecord` over a source; also owns the loop clock and stats.

    Use as a context manager (or call :meth:`close`) so the camera is released.
    """

    def __init__(self, predictor: Predictor, source: FrameSource, config: LiveConfig | None = None,
                 owns_source: bool = True, finder: HandFinder | None = None,
                 actions: ActionRunner | None = None, motion: MotionModel | None = None) -> None:
        self.predictor = predictor
        self.actions = actions  # gesture -> command/callback (rnn_jax.live.actions), fired on "started"
        self.finder = finder
        # landmark models: one recurrent state per tracked hand, carried frame to frame
        self.hand_states = _hand_states(predictor)
        if self.hand_states is not None and finder is None:
            raise ConfigError("a landmark model needs the hand finder (--hands on, and the hand models built: "
                              "python tools/build_hand_models.py)")
        self.hand_trackers: dict[int, GestureTracker] = {}
        self.trails: dict[int, deque] = {}  # per hand: the tracked point on the last TRAIL_FRAMES frames
        # dynamic gestures (--motion): a second, stateful model on the same hands, its own trackers
        self.motion = motion
        self.motion_trackers: dict[int, GestureTracker] = {}
        if motion is not None and finder is None:
            raise ConfigError("a motion model needs the hand finder (--hands on, and the hand models built: "
                              "python tools/build_hand_models.py)")
        self.source = source
        self.config = config or LiveConfig()
        self.owns_source = owns_source
        self.tracker = GestureTracker(predictor.class_names, self.config.gesture)
        self.stats = RunStats()
        # A model trained on square hand crops must see a square hand crop live, not the
        # whole letterboxed frame: that is why "hand" models default to the ROI.
        self.roi_enabled = finder is None and (
            self.config.roi if self.config.roi is not None else predictor.info.crop_mode == "hand")
        self._index = 0
        self._start: float | None = None
        self._clock: float | None = None
        self._done = False

    def __iter__(self) -> PredictionStream:
        return self

    def __next__(self) -> FrameRecord:
        if self._done or (self.config.max_frames is not None and self._index >= self.config.max_frames):
            self._done = True
            raise StopIteration
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        if self._clock is None:
            self._clock = now
        frame = self.source.read()
        if frame is None:
            self._done = True
            raise StopIteration
        if self.finder is not None:
            return self._next_with_hands(frame)
        roi = preprocess.center_square(frame, self.config.roi_fraction) if self.roi_enabled else None
        batch = self.predictor.preprocess(frame, "bgr", roi)
        t_model = time.perf_counter()
        raw = self.predictor.predict(batch)[0]
        latency_ms = (time.perf_counter() - t_model) * 1000.0
        state = self.tracker.update(raw, self._index)
        end = time.perf_counter()
        rec = FrameRecord(
            frame=frame, index=self._index, label=state.label, top_label=state.top_label,
            confidence=state.confidence, probabilities=state.probabilities, raw_probabilities=raw,
            latency_ms=latency_ms, loop_ms=(end - self._clock) * 1000.0, time_s=end - self._start,
            events=state.events, roi=roi, class_names=self.predictor.class_names,
            actions=self._act(state.events))
        self._clock = end
        self._index += 1
        self.stats.add(rec)
        return rec

    def _next_with_hands(self, frame: np.ndarray) -> FrameRecord:
        """One frame with the hand finder: classify each hand's crop, smooth per hand."""
        from rnn_jax.hands.crop import crop_square_of, hand_crop

        assert self.finder is not None and self._clock is not None and self._start is not None
        t_hands = time.perf_counter()
        hands = self.finder.find(frame, "bgr")
        image = preprocess.bgr_to_model_colour(frame, self.predictor.num_channels)
        k = len(self.predictor.class_names)
        if self.hand_states is not None:  # landmarks -> features -> model, state per hand
            hands_ms = (time.perf_counter() - t_hands) * 1000.0
            t_model = time.perf_counter()
            raw_all = self.hand_states.classify(hands)
        else:
            crops = [hand_crop(image, h, self.predictor.input_size) for h in hands]
            hands_ms = (time.perf_counter() - t_hands) * 1000.0
            t_model = time.perf_counter()
            raw_all = self.predictor.predict(np.stack(crops)) if crops else np.zeros((0, k), np.float32)
        motion_all = self.motion.classify(hands, frame.shape) if self.motion is not None else None
        latency_ms = (time.perf_counter() - t_model) * 1000.0
        events: list[GestureEvent] = []
        seen = set()
        records = []
        for i, (hand, raw) in enumerate(zip(hands, raw_all, strict=True)):
            seen.add(hand.track_id)
            tracker = self.hand_trackers.get(hand.track_id)
            if tracker is None:
                tracker = self.hand_trackers[hand.track_id] = GestureTracker(
                    self.predictor.class_names, self.config.gesture)
            state = tracker.update(raw, self._index)
            events += [replace(e, hand=hand.track_id) for e in state.events]
            trail = self.trails.setdefault(hand.track_id, deque(maxlen=TRAIL_FRAMES))
            trail.append(np.asarray(hand.landmarks[TRAIL_POINT, :2], np.float32))
            motion: dict[str, Any] = {}
            if motion_all is not None:
                assert self.motion is not None
                if self.motion.old_enough(hand.track_id):
                    mtracker = self.motion_trackers.get(hand.track_id)
                    if mtracker is None:
                        mtracker = self.motion_trackers[hand.track_id] = self.motion.tracker()
                    mstate = mtracker.update(motion_all[i], self._index)
                    events += [replace(e, hand=hand.track_id, dynamic=True) for e in mstate.events]
                    motion = {"motion": mstate.label, "motion_top": mstate.top_label,
                              "motion_confidence": mstate.confidence}
                else:  # a hand tracked for fewer than min_track_age frames: no motion event yet
                    top = int(np.argmax(motion_all[i]))
                    motion = {"motion": None, "motion_top": self.motion.class_names[top],
                              "motion_confidence": float(motion_all[i][top])}
            records.append(HandRecord(hand, state.label, state.top_label, state.confidence,
                                      state.probabilities, crop_square_of(image.shape, hand),
                                      trail=np.stack(trail), **motion))
        for track_id in [t for t in self.hand_trackers if t not in seen]:
            tracker = self.hand_trackers.pop(track_id)  # its "ended" is dated the last frame seen
            events += [replace(e, hand=track_id) for e in tracker.finish("hand lost")]
            self.trails.pop(track_id, None)
        for track_id in [t for t in self.motion_trackers if t not in seen]:
            tracker = self.motion_trackers.pop(track_id)
            events += [replace(e, hand=track_id, dynamic=True) for e in tracker.finish("hand lost")]
        # The frame's headline: a hand showing a gesture (most confident), else the most confident hand.
        primary = max(records, key=lambda r: (r.label is not None, r.confidence), default=None)
        end = time.perf_counter()
        rec = FrameRecord(
            frame=frame, index=self._index, label=primary.label if primary else None,
            top_label=primary.top_label if primary else NO_HAND,
            confidence=primary.confidence if primary else 0.0,
            probabilities=primary.probabilities if primary else np.zeros(k),
            raw_probabilities=raw_all[records.index(primary)] if primary else np.zeros(k, np.float32),
            latency_ms=latency_ms, loop_ms=(end - self._clock) * 1000.0, time_s=end - self._start,
            events=tuple(events), roi=None, class_names=self.predictor.class_names,
            hands=tuple(records), hands_ms=hands_ms, actions=self._act(events))
        self._clock = end
        self._index += 1
        self.stats.add(rec)
        return rec

    def _act(self, events: list[GestureEvent] | tuple[GestureEvent, ...]) -> tuple[dict[str, Any], ...] | None:
        """Fire the actions of this frame's events and collect finished runs (never waits)."""
        if self.actions is None:
            return None
        return tuple(self.actions.handle(events) + self.actions.poll())

    def finish_actions(self, wait_s: float | None = None) -> list[dict[str, Any]]:
        """After :meth:`finish`: wait for running actions (bounded by their timeouts, or ``wait_s``)
        and return the outcomes that came in since the last frame."""
        return [] if self.actions is None else self.actions.close(wait_s)

    def restart_clock(self) -> None:
        """Call after a pause, so the next record's loop_ms does not include the pause."""
        self._clock = None

    def reset(self) -> tuple[GestureEvent, ...]:
        """Forget smoothing history and landmark models' states (the 'r' key); returns the 'ended' events."""
        if self.hand_states is not None:
            self.hand_states.reset()
        events = list(self.tracker.reset())
        for track_id, tracker in self.hand_trackers.items():
            events += [replace(e, hand=track_id) for e in tracker.reset()]
        for track_id, tracker in self.motion_trackers.items():
            events += [replace(e, hand=track_id, dynamic=True) for e in tracker.reset()]
        if self.motion is not None:
            self.motion.reset()
        self.trails.clear()
        if self.actions is not None:
            self.actions.handle(events)  # the ends re-arm the debounce
        return tuple(events)

    def finish(self) -> tuple[GestureEvent, ...]:
        """Stop: end the active gesture (returned as an event) and release the source."""
        self._done = True
        events = list(self.tracker.finish())
        for track_id, tracker in self.hand_trackers.items():
            events += [replace(e, hand=track_id) for e in tracker.finish()]
        for track_id, tracker in self.motion_trackers.items():
            events += [replace(e, hand=track_id, dynamic=True) for e in tracker.finish()]
        self.hand_trackers.clear()
        self.motion_trackers.clear()
        if self.actions is not None:
            self.actions.handle(events)
        self.close()
        return tuple(events)

    def close(self) -> None:
        self._done = True
        if self.owns_source:
            self.source.close()

    def summary(self) -> RunSummary:
        return replace(self.stats.summary(), skipped_files=getattr(self.source, "skipped", 0))

    def __enter__(self) -> PredictionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_predictions(
    model: str | Path | Predictor,
    source: str | int | Path | FrameSource,
    *,
    smoothing: str | SmoothingConfig = "ema:0.5",
    threshold: float | None = None,
    stable_frames: int = 5,
    roi: bool | None = None,
    roi_fraction: float = 0.6,
    max_frames: int | None = None,
    threads: int | None = None,
    width: int | None = None,
    height: int | None = None,
    hands: str | bool | HandFinder = "auto",
    hand_models: str | Path | None = None,
    max_hands: int = 2,
    on_gesture: Callable[[GestureEvent], object] | Mapping[str, object] | None = None,
    actions: str | Path | None = None,
    dry_run: bool = False,
    action_timeout: float = DEFAULT_TIMEOUT_S,
    action_cooldown: float = DEFAULT_COOLDOWN_S,
    motion: str | Path | MotionModel | None = None,
) -> PredictionStream:
    """Classify every frame of ``source`` (camera index, video/image path, folder, URL).

    ``model`` is an ONNX path (loaded with ``threads``, default :func:`default_live_threads`)
    or a loaded :class:`Predictor`. ``hands``: "auto" (on when the hand models are built and
    the model was trained on hand crops), "on"/True, "off"/False, or a loaded
    :class:`rnn_jax.hands.HandFinder`. ``threshold`` None = the model file's ``reject_threshold``
    when it has one, else 0.6.

    Actions (:mod:`rnn_jax.live.actions`): ``on_gesture`` is a callable called with the
    :class:`GestureEvent` each time a gesture starts, or a mapping gesture -> callable / command
    list; ``actions`` a mapping file. Debounce, cooldown (``action_cooldown`` s), timeout
    (``action_timeout`` s) and ``dry_run`` are as in ``--on``; callbacks and commands run on
    their own threads, and each record's ``actions`` lists what fired and what finished; call
    ``stream.finish_actions()`` at the end for the rest. Other arguments are as in
    ``python -m rnn_jax.live``. Configuration is validated before the source is opened.

    ``motion``: a motion model (path or :class:`rnn_jax.live.motion.MotionModel`) run beside the
    static one on the same hands (turns the hand finder on); its events have ``dynamic=True``.
    """
    from rnn_jax.live.motion import MotionModel, check_motion_model

    if isinstance(smoothing, str):
        smoothing = SmoothingConfig.parse(smoothing)
    config = LiveConfig(
        gesture=GestureConfig(smoothing=smoothing, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                              stable_frames=stable_frames),
        roi=roi, roi_fraction=roi_fraction, max_frames=max_frames)
    predictor = model if not isinstance(model, (str, Path)) else load_predictor(
        model, threads=threads if threads is not None else default_live_threads())
    check_motion_model(predictor, str(model))
    config = replace(config, gesture=replace(config.gesture, threshold=resolve_threshold(threshold, predictor.info)))
    if motion is not None and not isinstance(motion, MotionModel):
        motion = MotionModel.load(motion)
    known = predictor.class_names + (motion.gestures if motion is not None else ())
    runner = build_runner(actions_file=actions, callbacks=on_gesture, dry_run=dry_run, timeout_s=action_timeout,
                          cooldown_s=action_cooldown, known_gestures=known)
    if motion is not None and hands == "auto":
        hands = "on"
    finder = make_finder(hands, predictor, hand_models, max_hands)
    owns = not isinstance(source, FrameSource)
    frames = open_source(source, width, height) if owns else source
    return PredictionStream(predictor, frames, config, owns_source=owns, finder=finder, actions=runner,
                            motion=motion)


HANDS_CHOICES = ("auto", "on", "off")


def _hand_states(predictor: object):
    """Per-hand recurrent states for a landmark model, None for image models."""
    from rnn_jax.runtime.landmarks import HandStates, LandmarkPredictor

    return HandStates(predictor) if isinstance(predictor, LandmarkPredictor) else None


def hands_wanted(hands: str | bool, predictor: Predictor, hand_models: str | Path | None = None) -> bool:
    """Resolve ``--hands``: auto = on when the models are built and the classifier takes hand crops.

    (A classifier trained on whole frames would be fed hand crops it never saw, so auto
    leaves it alone; ``on`` forces the finder anyway.)
    """
    from rnn_jax.hands.models import models_present

    if isinstance(hands, bool):
        return hands
    if hands not in HANDS_CHOICES:
        raise ConfigError(f"hands must be one of {', '.join(HANDS_CHOICES)}, got {hands!r}")
    if hands == "auto":
        if predictor.info.crop_mode == "landmarks":
            return True  # nothing else feeds a landmark model (missing models are named when loading)
        return predictor.info.crop_mode == "hand" and models_present(hand_models)
    return hands == "on"


def make_finder(hands: str | bool | HandFinder, predictor: Predictor, hand_models: str | Path | None = None,
                max_hands: int = 2, threads: int | None = 1) -> HandFinder | None:
    """A :class:`rnn_jax.hands.HandFinder` when ``hands`` resolves to on, else None."""
    from rnn_jax.hands import FinderConfig, HandFinder

    if isinstance(hands, HandFinder):
        return hands
    if max_hands < 1:
        raise ConfigError(f"max hands must be >= 1, got {max_hands}")
    if not hands_wanted(hands, predictor, hand_models):
        return None
    return HandFinder.load(hand_models, threads=threads, config=FinderConfig(max_hands=max_hands))
