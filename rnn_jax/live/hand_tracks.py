"""Per tracked hand: its gesture smoothing, its fingertip trail and its motion smoothing (hands on).

Hands come and go; each track id gets its own :class:`GestureTracker` on first sight and
ends it ("hand lost") when the finder stops reporting it, so one hand's gesture never
leaks into another's. Events carry the hand's track id (motion events ``dynamic=True``).

A two-hand gesture (zoom with two hands) is seen by both hands' motion models: it is reported
**once per hand pair**: the hand whose partner already shows the same two-hand gesture keeps
it silently (no "started", no "ended"; its JSONL row still shows it). For
:data:`REFRACTORY_S` after a hand's dynamic gesture ends, that hand starts no other one while it
rests (except ``drop`` after ``drag`` and ``double_tap`` after ``tap``): the gesture scrolling out
of the model's window is not a new gesture.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rnn_jax.hands.motion_features import TWO_HAND_CLASSES
from rnn_jax.live.results import HandResult
from rnn_jax.live.smoothing import GestureConfig, GestureEvent, GestureTracker

if TYPE_CHECKING:
    from rnn_jax.hands import Hand
    from rnn_jax.live.motion import MotionModel

TRAIL_POINT = 8  # the tracked point drawn as a trail: the index fingertip (what motion data tracks)
TRAIL_FRAMES = 24
# after a dynamic gesture ends, the same hand starts no other one for this long (s), except its successor
REFRACTORY_S = 0.6
ACTIVE_WINDOW_S = 0.2  # ... unless the hand moved within this long (a circle after its first arc fired a swipe)
SUCCESSORS = {"drop": "drag", "double_tap": "tap"}  # gesture -> the one it may follow at once


class HandTracks:
    """The per-hand state of the frame loop: static trackers, trails, motion trackers."""

    def __init__(self, class_names: tuple[str, ...], gesture: GestureConfig,
                 motion: MotionModel | None = None) -> None:
        self.class_names = class_names
        self.gesture = gesture
        self.motion = motion
        self.trackers: dict[int, GestureTracker] = {}
        self.trails: dict[int, deque] = {}  # per hand: the tracked point on the last TRAIL_FRAMES frames
        self.motion_trackers: dict[int, GestureTracker] = {}
        self.merged: dict[int, str] = {}  # hand -> the two-hand gesture its partner reports for the pair
        self.waiting: dict[int, GestureTracker] = {}  # lost hands' motion trackers, while they may be relinked
        self.last_end: dict[int, tuple[str, float]] = {}  # hand -> its last dynamic gesture's end (label, s)
        self.silenced: dict[int, str] = {}  # hand -> a gesture started within the refractory period

    def update(self, results: list[tuple[Hand, np.ndarray]], motion_all: np.ndarray | None, index: int,
               frame_shape: tuple[int, ...]) -> tuple[list[HandResult], list[GestureEvent]]:
        """Smooth each hand's probabilities (and its motion model's), end the hands no longer seen."""
        from rnn_jax.hands.crop import crop_square_of

        events: list[GestureEvent] = []
        moves: list[GestureEvent] = []
        seen = set()
        records = []
        if self.motion is not None:  # a lost hand found again under a new id keeps its motion tracker
            for new, old in self.motion.relinked.items():  # lost this frame (a new id at once) or earlier
                tracker = self.waiting.pop(old, None) or self.motion_trackers.pop(old, None)
                if tracker is not None:
                    self.motion_trackers[new] = tracker
                for memo in (self.merged, self.silenced, self.last_end):
                    if old in memo:
                        memo[new] = memo.pop(old)
        for i, (hand, raw) in enumerate(results):
            seen.add(hand.track_id)
            tracker = self.trackers.get(hand.track_id)
            if tracker is None:
                tracker = self.trackers[hand.track_id] = GestureTracker(self.class_names, self.gesture)
            state = tracker.update(raw, index)
            events += [replace(e, hand=hand.track_id) for e in state.events]
            trail = self.trails.setdefault(hand.track_id, deque(maxlen=TRAIL_FRAMES))
            trail.append(np.asarray(hand.landmarks[TRAIL_POINT, :2], np.float32))
            motion: dict[str, Any] = {}
            if motion_all is not None:
                motion, motion_events = self._motion(hand.track_id, motion_all[i], index)
                moves += motion_events
            records.append(HandResult(hand, state.label, state.top_label, state.confidence,
                                      state.probabilities, crop_square_of(frame_shape, hand),
                                      trail=np.stack(trail), **motion))
        for track_id in [t for t in self.trackers if t not in seen]:
            tracker = self.trackers.pop(track_id)  # its "ended" is dated the last frame seen
            events += [replace(e, hand=track_id) for e in tracker.finish("hand lost")]
            self.trails.pop(track_id, None)
        relinkable = self.motion.lost if self.motion is not None else {}
        for track_id in [t for t in self.motion_trackers if t not in seen]:
            tracker = self.motion_trackers.pop(track_id)
            if track_id in relinkable:
                self.waiting[track_id] = tracker  # may come back (rnn_jax.live.motion: RELINK_S)
            else:
                moves += [replace(e, hand=track_id, dynamic=True) for e in tracker.finish("hand lost")]
        for track_id in [t for t in self.waiting if t not in relinkable]:
            tracker = self.waiting.pop(track_id)  # its "ended" is dated the last frame seen
            moves += [replace(e, hand=track_id, dynamic=True) for e in tracker.finish("hand lost")]
        return records, events + self._quiet(self._pairs(moves))

    def _quiet(self, moves: list[GestureEvent]) -> list[GestureEvent]:
        """The refractory period: for REFRACTORY_S after a hand's dynamic gesture ended, that hand starts
        no other one while it rests (no motion within ACTIVE_WINDOW_S: the gesture scrolling out of the
        model's window is not a new gesture), except an expected successor (``drop`` after ``drag``,
        ``double_tap`` after ``tap``). A silenced start's end is silent too."""
        if self.motion is None:
            return moves
        now, out = self.motion.now, []
        for e in moves:
            h = e.hand
            if e.kind == "started":
                last = self.last_end.get(h)
                resting = now - self.motion.active_at.get(h, -np.inf) > ACTIVE_WINDOW_S
                if (last is not None and now - last[1] < REFRACTORY_S and SUCCESSORS.get(e.label) != last[0]
                        and resting):
                    self.silenced[h] = e.label
                    continue
            elif self.silenced.get(h) == e.label:
                del self.silenced[h]
                continue
            else:
                self.last_end[h] = (e.label, now)
            out.append(e)
        return out

    def _pairs(self, moves: list[GestureEvent]) -> list[GestureEvent]:
        """Motion events, a two-hand gesture reported once per pair (the module docstring)."""
        out = []
        partners = self.motion.partners if self.motion is not None else {}
        for e in moves:
            if e.label in TWO_HAND_CLASSES and e.hand is not None:
                if e.kind == "started":
                    other = partners.get(e.hand)
                    tracker = self.motion_trackers.get(other) if other is not None else None
                    if tracker is not None and tracker.active == e.label and other not in self.merged:
                        self.merged[e.hand] = e.label
                        continue
                elif self.merged.get(e.hand) == e.label:
                    del self.merged[e.hand]
                    continue
            out.append(e)
        return out

    def _motion(self, track_id: int, probs: np.ndarray, index: int) -> tuple[dict[str, Any], list[GestureEvent]]:
        """One hand's motion fields for its :class:`HandResult`, and its motion events."""
        assert self.motion is not None
        if not self.motion.old_enough(track_id):  # tracked for under min_track_age seconds: no event yet
            top = int(np.argmax(probs))
            return {"motion": None, "motion_top": self.motion.class_names[top],
                    "motion_confidence": float(probs[top])}, []
        tracker = self.motion_trackers.get(track_id)
        if tracker is None:
            tracker = self.motion_trackers[track_id] = self.motion.tracker()
        state = tracker.update(self.motion.gate(track_id, probs), index)  # rnn_jax.live.motion_rules
        return ({"motion": state.label, "motion_top": state.top_label, "motion_confidence": state.confidence},
                [replace(e, hand=track_id, dynamic=True) for e in state.events])

    def reset(self) -> list[GestureEvent]:
        """Forget every hand's smoothing, motion state and trail; returns the 'ended' events."""
        events = self._end_all(GestureTracker.reset)
        if self.motion is not None:
            self.motion.reset()
        self.trails.clear()
        self.last_end.clear()
        self.silenced.clear()
        return events

    def finish(self) -> list[GestureEvent]:
        """End every hand's active gesture (the stream stops); returns the 'ended' events."""
        events = self._end_all(GestureTracker.finish)
        self.trackers.clear()
        self.motion_trackers.clear()
        return events

    def _end_all(self, end: Callable[[GestureTracker], Iterable[GestureEvent]]) -> list[GestureEvent]:
        """``end`` (reset or finish) every hand's trackers, static then motion; their events, hand-tagged."""
        events = [replace(e, hand=t) for t, tracker in self.trackers.items() for e in end(tracker)]
        moving = {**self.waiting, **self.motion_trackers}
        self.waiting.clear()
        return events + self._quiet(self._pairs([replace(e, hand=t, dynamic=True) for t, tracker in moving.items()
                                                 for e in end(tracker)]))
