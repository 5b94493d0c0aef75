"""The live loop as a small Python API (for notebooks, scripts and the CLI).

    from rnn_jax.live import iter_predictions
    with iter_predictions("student.onnx", "clip.avi", threshold=0.7) as stream:
        for rec in stream:
            print(rec.index, rec.label, rec.confidence, rec.latency_ms)
        print(stream.summary().format())

Each frame: read -> (find/track hands, :mod:`rnn_jax.hands`) -> the mode's classifier
(:mod:`rnn_jax.live.classifiers`: the frame or its ROI, each hand's crop, or each hand's
landmarks with its own state) -> smoothing/threshold/stability (:mod:`rnn_jax.live.smoothing`;
per hand with hands on, :mod:`rnn_jax.live.hand_tracks`) -> actions -> one :class:`FrameResult`
(:mod:`rnn_jax.live.results`). With hands on, no hand in view = no gesture.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnn_jax.errors import ConfigError
from rnn_jax.live.actions import DEFAULT_COOLDOWN_S, DEFAULT_TIMEOUT_S, ActionRunner, build_runner
from rnn_jax.live.classifiers import FrameClassifier, make_classifier
from rnn_jax.live.hand_tracks import TRAIL_FRAMES, TRAIL_POINT, HandTracks
from rnn_jax.live.results import NO_HAND, FrameResult, HandResult, RunStats, RunSummary
from rnn_jax.live.settings import (
    DEFAULT_HAND_SEARCH,
    DEFAULT_THRESHOLD,
    HANDS_CHOICES,
    LiveConfig,
    default_live_threads,
    hands_wanted,
    make_finder,
    resolve_gesture,
    resolve_threshold,
    threshold_origin,
)
from rnn_jax.live.smoothing import GestureEvent, GestureTracker, SmoothingConfig
from rnn_jax.live.sources import FrameSource, live_spec, open_source
from rnn_jax.runtime.landmark_predictor import load_predictor
from rnn_jax.runtime.predictor import Predictor

NOMINAL_FPS = 30.0  # a file source that does not give its frame rate (image folders) is taken as this

if TYPE_CHECKING:
    from rnn_jax.hands import HandFinder
    from rnn_jax.live.motion import MotionModel

__all__ = [  # the loop's names, and those that lived here before the split (still importable from here)
    "DEFAULT_THRESHOLD", "HANDS_CHOICES", "NO_HAND", "TRAIL_FRAMES", "TRAIL_POINT", "FrameResult", "HandResult",
    "LiveConfig", "PredictionStream", "RunStats", "RunSummary", "default_live_threads", "hands_wanted",
    "iter_predictions", "make_finder", "resolve_threshold", "threshold_origin",
]


@dataclass(frozen=True)
class _Headline:
    """What a frame shows: the frame's own smoothed state, or its primary hand's."""

    label: str | None
    top_label: str
    confidence: float
    probabilities: np.ndarray
    raw: np.ndarray


class PredictionStream:
    """Iterator of :class:`FrameResult` over a source; also owns the loop clock and stats.

    Use as a context manager (or call :meth:`close`) so the camera is released.
    """

    def __init__(self, predictor: Predictor, source: FrameSource, config: LiveConfig | None = None,
                 owns_source: bool = True, finder: HandFinder | None = None,
                 actions: ActionRunner | None = None, motion: MotionModel | None = None) -> None:
        self.predictor = predictor
        self.config = config or LiveConfig()
        self.actions = actions  # gesture -> command/callback (rnn_jax.live.actions), fired on "started"
        self.finder = finder
        self.classifier = make_classifier(predictor, self.config, finder)
        # dynamic gestures (--motion): a second, stateful model on the same hands, its own trackers
        self.motion = motion
        if motion is not None and finder is None:
            raise ConfigError("a motion model needs the hand finder (--hands on, and the hand models built: "
                              "python tools/build_hand_models.py)")
        self.tracks = HandTracks(predictor.class_names, self.config.gesture, motion)
        self.source = source
        self.owns_source = owns_source
        self.tracker = GestureTracker(predictor.class_names, self.config.gesture)
        self.stats = RunStats()
        self.roi_enabled = isinstance(self.classifier, FrameClassifier) and self.classifier.roi_fraction is not None
        self._index = 0
        self._start: float | None = None
        self._clock: float | None = None
        self._read_at = 0.0  # when this frame was read (perf_counter)
        self._done = False

    @property
    def trails(self) -> dict:
        """Per hand: its tracked point (index fingertip) on the last frames (for the overlay)."""
        return self.tracks.trails

    def __iter__(self) -> PredictionStream:
        return self

    def __next__(self) -> FrameResult:
        if self._done or (self.config.max_frames is not None and self._index >= self.config.max_frames):
            self._done = True
            raise StopIteration
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        if self._clock is None:
            self._clock = now
        frame = self.source.read()
        self._read_at = time.perf_counter()
        if frame is None:
            self._done = True
            raise StopIteration
        hands, hands_ms = None, 0.0
        if self.finder is not None:
            t_hands = time.perf_counter()
            hands = self.finder.find(frame, "bgr")
            hands_ms = (time.perf_counter() - t_hands) * 1000.0
        out = self.classifier.classify(frame, hands)
        latency_ms = out.model_ms
        if hands is None:
            state = self.tracker.update(out.results[0][1], self._index)
            head = _Headline(state.label, state.top_label, state.confidence, state.probabilities, out.results[0][1])
            records, events = None, list(state.events)
        else:
            t_motion = time.perf_counter()
            motion_all = (self.motion.classify(hands, frame.shape, self._frame_time())
                          if self.motion is not None else None)
            latency_ms += (time.perf_counter() - t_motion) * 1000.0
            hand_records, events = self.tracks.update(out.results, motion_all, self._index, frame.shape)
            head = self._primary(hand_records, out.results)
            records = tuple(hand_records)
        end = time.perf_counter()
        rec = FrameResult(
            frame=frame, index=self._index, label=head.label, top_label=head.top_label,
            confidence=head.confidence, probabilities=head.probabilities, raw_probabilities=head.raw,
            latency_ms=latency_ms, loop_ms=(end - self._clock) * 1000.0, time_s=end - self._start,
            events=tuple(events), roi=out.roi, class_names=self.predictor.class_names,
            hands=records, hands_ms=hands_ms, actions=self._act(events))
        self._clock = end
        self._index += 1
        self.stats.add(rec)
        return rec

    def _frame_time(self) -> float:
        """This frame's time in seconds, for the motion model's per-second rates: the clock for a live
        camera or stream, else the frame's place in the file at its frame rate (30 frames/s when the
        source does not say: image folders)."""
        if getattr(self.source, "live", False):
            return self._read_at
        return self._index / (self.source.fps or NOMINAL_FPS)

    def _primary(self, records: list[HandResult], results: list) -> _Headline:
        """The frame's headline: a hand showing a gesture (most confident), else the most confident hand."""
        primary = max(records, key=lambda r: (r.label is not None, r.confidence), default=None)
        if primary is None:
            k = len(self.predictor.class_names)
            return _Headline(None, NO_HAND, 0.0, np.zeros(k), np.zeros(k, np.float32))
        raw = results[records.index(primary)][1]
        return _Headline(primary.label, primary.top_label, primary.confidence, primary.probabilities, raw)

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
        self.classifier.reset()
        events = list(self.tracker.reset()) + self.tracks.reset()
        if self.actions is not None:
            self.actions.handle(events)  # the ends re-arm the debounce
        return tuple(events)

    def finish(self) -> tuple[GestureEvent, ...]:
        """Stop: end the active gesture (returned as an event) and release the source."""
        self._done = True
        events = list(self.tracker.finish()) + self.tracks.finish()
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
    smoothing: str | SmoothingConfig | None = None,
    threshold: float | None = None,
    stable_frames: int | None = None,
    roi: bool | None = None,
    roi_fraction: float = 0.6,
    max_frames: int | None = None,
    threads: int | None = None,
    width: int | None = None,
    height: int | None = None,
    hands: str | bool | HandFinder = "auto",
    hand_models: str | Path | None = None,
    max_hands: int = 2,
    hand_search: str = DEFAULT_HAND_SEARCH,
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
    :class:`rnn_jax.hands.HandFinder`; ``hand_search`` its search budget (``--hand-search``:
    light, balanced, thorough, every-frame). ``threshold`` None = the model file's ``reject_threshold``
    when it has one, else 0.6.

    Actions (:mod:`rnn_jax.live.actions`): ``on_gesture`` is a callable called with the
    :class:`GestureEvent` each time a gesture starts, or a mapping gesture -> callable / command
    list; ``actions`` a mapping file. Debounce, cooldown (``action_cooldown`` s), timeout
    (``action_timeout`` s) and ``dry_run`` are as in ``--on``; callbacks and commands run on
    their own threads, and each record's ``actions`` lists what fired and what finished; call
    ``stream.finish_actions()`` at the end for the rest. Other arguments are as in
    ``python -m rnn_jax.live``; ``smoothing``, ``threshold`` and ``stable_frames`` left None are
    the model file's stored live settings, else the defaults. Configuration is validated before
    the source is opened.

    ``motion``: a motion model (path or :class:`rnn_jax.live.motion.MotionModel`) run beside the
    static one on the same hands (turns the hand finder on); its events have ``dynamic=True``.
    """
    from rnn_jax.live.motion import MotionModel, check_motion_model

    # the user's values are checked before anything is opened; None = the model file's, else the default
    config = LiveConfig(gesture=resolve_gesture(smoothing, threshold, stable_frames), roi=roi,
                        roi_fraction=roi_fraction, max_frames=max_frames)
    predictor = model if not isinstance(model, (str, Path)) else load_predictor(
        model, threads=threads if threads is not None else default_live_threads())
    check_motion_model(predictor, str(model))
    config = replace(config, gesture=resolve_gesture(smoothing, threshold, stable_frames, predictor.info))
    if motion is not None and not isinstance(motion, MotionModel):
        motion = MotionModel.load(motion)
    known = predictor.class_names + (motion.gestures if motion is not None else ())
    runner = build_runner(actions_file=actions, callbacks=on_gesture, dry_run=dry_run, timeout_s=action_timeout,
                          cooldown_s=action_cooldown, known_gestures=known)
    if motion is not None and hands == "auto":
        hands = "on"
    live = source.live if isinstance(source, FrameSource) else live_spec(source)
    finder = make_finder(hands, predictor, hand_models, max_hands, hand_search=hand_search, live=live)
    owns = not isinstance(source, FrameSource)
    frames = open_source(source, width, height) if owns else source
    return PredictionStream(predictor, frames, config, owns_source=owns, finder=finder, actions=runner,
                            motion=motion)
