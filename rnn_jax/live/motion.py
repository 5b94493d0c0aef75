"""Dynamic gestures in the live loop: a motion model's runtime per tracked hand (numpy only).

The features it feeds the model are the one motion feature rule of
:mod:`rnn_jax.hands.motion_features` (the same as training). A motion model's ONNX file is a
landmark model (:mod:`rnn_jax.runtime.landmark_predictor`) whose metadata ``features`` say
``{"rule": "motion", ...}``; its state is the model's own memory (for the window model: the last
frames' embeddings). :class:`MotionModel` keeps, per tracked hand, that state and the previous
frame, both dropped when the hand is lost, and gives each hand its **partner** (the nearest other
hand in view) for the two-hand features. Rates are per second from each frame's time (the live
loop passes it), and a hand's minimum age before its motion may start an event is in seconds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rnn_jax.errors import ConfigError, ModelFileError
from rnn_jax.hands.motion_features import (
    MAX_DT,
    MOTION_FEATURE_VERSION,
    NOMINAL_DT,
    RULE,
    HandStats,
    frame_features,
    hand_stats,
    is_motion_info,
    motion_version,
    view_coords,
)
from rnn_jax.live.motion_rules import (
    DEFAULT_RULES,
    MotionRules,
    Trace,
    finger_extension,
    size_flicker,
    unsteady,
    vetoed,
)
from rnn_jax.live.smoothing import GestureConfig, GestureTracker, SmoothingConfig

# classes that never start an event: the hand held still, and "no motion gesture"
MOTION_BACKGROUND = ("still", "no_motion")
DEFAULT_MOTION_GESTURE = GestureConfig(SmoothingConfig("ema", alpha=0.6), threshold=0.6, stable_frames=2)
# seconds a hand must have been tracked before its motion may start an event: the hand finder's
# false and short-lived hands come and go within a few frames, with landmarks that jump
# (0.25 s: the 9th frame at 30 frames/s, the 5th at 15)
DEFAULT_MIN_TRACK_AGE = 0.25
# a hand the finder lost is kept this long (s); a new track within this distance (units of the frame's
# short side) of where it was continues it (state, first frame): fast hands at 15 frames/s are lost
# for a frame or two and come back with a new id
RELINK_S, RELINK_DISTANCE = 0.35, 0.6
ACTIVE_LEVEL = 0.25  # feature units (x 1.5 = short sides per second): a hand at rest with jitter is ~0.05
DUPLICATE_FRACTION = 0.4  # two tracks whose centres are closer than this share of a hand's size: one hand


class MotionModel:
    """A motion model in the live loop: per tracked hand, its state and the previous frame; lost hands
    relinked, duplicate tracks left out of partners and events."""

    def __init__(self, predictor: Any, gesture: GestureConfig = DEFAULT_MOTION_GESTURE,
                 min_track_age: float = DEFAULT_MIN_TRACK_AGE, rules: MotionRules = DEFAULT_RULES) -> None:
        if not min_track_age >= 0:
            raise ConfigError(f"the motion model's minimum track age must be >= 0 s, got {min_track_age}")
        if not is_motion_info(predictor.info):
            raise ModelFileError(f"{predictor.path} is not a motion model (its metadata features are not "
                                 f"rule '{RULE}'); train one with `python -m experiments.motion`")
        version = motion_version(predictor.info.features)
        if version != MOTION_FEATURE_VERSION:
            raise ModelFileError(f"{predictor.path} uses motion features version {version}, this rnn-jax computes "
                                 f"version {MOTION_FEATURE_VERSION} (rates per second, partner hand): retrain it "
                                 "with `python -m experiments.motion`" if version < MOTION_FEATURE_VERSION
                                 else f"{predictor.path} uses motion features version {version}; upgrade rnn-jax")
        self.predictor = predictor
        self.gesture = gesture
        self.min_track_age = float(min_track_age)
        self.states: dict[int, np.ndarray] = {}
        self.previous: dict[int, HandStats] = {}  # each present hand's previous frame (its stats)
        self.seen_at: dict[int, float] = {}  # the time of each present hand's previous frame (s)
        self.first_seen: dict[int, float] = {}  # the time of each present hand's first frame (s)
        self.now = 0.0  # the time of the last frame stepped (s)
        self.partners: dict[int, int] = {}  # this frame: each hand's partner (the nearest other hand)
        self.lost: dict[int, tuple] = {}  # hands not seen lately: (state, last stats, first seen, last seen)
        self.relinked: dict[int, int] = {}  # this frame: a new track id -> the lost hand it continues
        self.duplicates: set[int] = set()  # this frame: tracks on the same hand as an older track
        self.active_at: dict[int, float] = {}  # each hand's last frame with motion (moving_now), s
        self.rules = rules  # the decoding rules (rnn_jax.live.motion_rules)
        self._where = {n: i for i, n in enumerate(predictor.class_names)}
        self.drag_at: dict[int, float] = {}  # each hand's last frame whose top class was drag, s
        self.unsteady_at: dict[int, float] = {}  # each hand's last frame with unsteady landmarks, s
        self.traces: dict[int, Trace] = {}  # each hand's recent frames (the evidence rule)
        self.jumps: dict[int, tuple[float, float] | None] = {}  # each hand's last size jump (time, log ratio)
        self.extension: dict[int, float] = {}  # each hand's most extended finger, last frame (finger_extension)
        self._memos = (self.active_at, self.drag_at, self.unsteady_at, self.traces, self.jumps, self.extension)  # follow a hand through a relink

    @classmethod
    def load(cls, path: str | Path, threads: int | None = 1, threshold: float | None = None,
             stable_frames: int | None = None, smoothing: str | SmoothingConfig | None = None,
             min_track_age: float | None = None, rules: MotionRules | None = None) -> MotionModel:
        """Load ``path``; ``threshold`` None = the file's reject_threshold, else the default (0.6);
        ``min_track_age`` (seconds) None = :data:`DEFAULT_MIN_TRACK_AGE`."""
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
        return cls(predictor, gesture, DEFAULT_MIN_TRACK_AGE if min_track_age is None else min_track_age,
                   DEFAULT_RULES if rules is None else rules)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.predictor.class_names

    @property
    def gestures(self) -> tuple[str, ...]:
        """The classes that start events (the vocabulary without the background)."""
        return tuple(c for c in self.class_names if c not in MOTION_BACKGROUND)

    def tracker(self) -> GestureTracker:
        return GestureTracker(self.class_names, self.gesture, background=MOTION_BACKGROUND)

    def step(self, track_ids: list[int], views: np.ndarray, now: float | None = None,
             flagged: set[int] | frozenset[int] = frozenset()) -> np.ndarray:
        """User-view landmarks [n, 21, 2] of this frame's hands at time ``now`` (s; None = one nominal
        frame after the last) -> probabilities [n, C]; states advanced. A hand not in ``track_ids`` is
        kept aside for :data:`RELINK_S`: a new track that appears near where it was continues it
        (``relinked``: the finder lost a fast hand for a few frames, or gave it a new id). ``flagged``:
        hands whose landmarks the finder gave unsteady this frame (low presence, at the frame's edge)."""
        k = len(self.class_names)
        now = self.now + NOMINAL_DT if now is None else float(now)
        self.now = now
        views = np.asarray(views, np.float64).reshape(-1, 21, 2)
        stats = {t: hand_stats(v) for t, v in zip(track_ids, views, strict=True)}
        self._set_aside([t for t in self.states if t not in stats], now)
        self.duplicates = find_duplicates(track_ids, stats, self.states)
        self.relinked = {}
        for t in track_ids:
            if t not in self.states and t not in self.duplicates:
                self._relink(t, stats[t])
        if not track_ids:
            self.partners = {}
            return np.zeros((0, k), np.float32)
        self.partners = nearest_partners([t for t in track_ids if t not in self.duplicates], stats)
        feats = []
        for t in track_ids:
            prev = self.previous.get(t)
            dt = now - self.seen_at.get(t, now)
            if prev is not None and not 0.0 < dt <= MAX_DT:
                prev = None  # a long gap (or a clock that did not move): start the hand afresh
            other = self.partners.get(t)
            feats.append(frame_features(stats[t], prev, dt if prev is not None else NOMINAL_DT,
                                        None if other is None else stats[other],
                                        None if other is None else self.previous.get(other)))
        for t, f in zip(track_ids, feats):
            if moving_now(f):
                self.active_at[t] = now
            prev = self.previous.get(t)
            if self.rules.evidence_s is not None or self.rules.max_turn is not None:
                other = self.partners.get(t)
                pd = None if other is None else math.hypot(stats[t].centre[0] - stats[other].centre[0],
                                                           stats[t].centre[1] - stats[other].centre[1])
                trace = self.traces.setdefault(t, Trace(max(self.rules.evidence_s or 0.0, self.rules.turn_s)))
                trace.add(now, stats[t].tip, stats[t].centre, stats[t].size, stats[t].spread, pd)
            if self.rules.finger_open is not None:
                self.extension[t] = finger_extension(stats[t].pose)
            flicker, self.jumps[t] = size_flicker(self.rules, now, None if prev is None else stats[t].size / prev.size,
                                                  self.jumps.get(t))
            if flicker or t in flagged:
                self.unsteady_at[t] = now
        fresh = [t for t in track_ids if t not in self.states]
        state = np.concatenate([self.states.get(t, self.predictor.initial_state(1)) for t in track_ids])
        probs, new_state = self.predictor.predict(np.stack(feats), state)
        drag = self.class_names.index("drag") if "drag" in self.class_names else -1
        for t, p in zip(track_ids, probs):
            if int(np.argmax(p)) == drag:
                self.drag_at[t] = now
        self.states = {t: new_state[i:i + 1] for i, t in enumerate(track_ids)}
        self.previous = stats  # each hand's stats, for its next frame and its partner's
        self.seen_at = {t: now for t in track_ids}
        self.first_seen = {t: now if t in fresh else self.first_seen.get(t, now) for t in track_ids}
        return probs

    def _set_aside(self, gone: list[int], now: float) -> None:
        """Hands no longer reported wait in ``lost`` (state, last frame, times) for RELINK_S, then are forgotten."""
        for t in gone:
            self.lost[t] = (self.states.pop(t), self.previous.pop(t), self.first_seen.pop(t, now),
                            self.seen_at.pop(t, now))
        for t in [t for t, rec in self.lost.items() if now - rec[3] > RELINK_S]:
            del self.lost[t]
            for memo in self._memos:
                memo.pop(t, None)

    def _relink(self, t: int, stats: HandStats) -> None:
        """A new track near where a lost hand was (within RELINK_DISTANCE) takes over its state and times."""
        best, best_d = None, RELINK_DISTANCE
        for old, rec in self.lost.items():
            (x, y), (px, py) = stats.centre, rec[1].centre
            d = ((x - px) ** 2 + (y - py) ** 2) ** 0.5
            if d <= best_d:
                best, best_d = old, d
        if best is not None:
            self.states[t], self.previous[t], self.first_seen[t], self.seen_at[t] = self.lost.pop(best)
            self.relinked[t] = best
            for memo in self._memos:
                if best in memo:
                    memo[t] = memo.pop(best)

    def old_enough(self, track_id: int) -> bool:
        """Has this hand been tracked for ``min_track_age`` seconds (from its first frame to this one)?
        Only then may its motion start an event (its state is advanced from its first frame all the same)."""
        first = self.first_seen.get(track_id)
        return (first is not None and track_id not in self.duplicates
                and self.now - first >= self.min_track_age - 1e-9)

    def gate(self, track_id: int, probs: np.ndarray) -> np.ndarray:
        """``probs`` of one hand with the classes it may not start now (:func:`rnn_jax.live.motion_rules.vetoed`)
        moved to ``no_motion``."""
        partner = self.partners.get(track_id)
        first = self.first_seen.get(partner) if partner is not None else None
        trace = self.traces.get(track_id)
        turn = 0.0 if trace is None or self.rules.max_turn is None else trace.turn(self.rules.turn_s,
                                                                                   self.rules.turn_move)
        winding = None if trace is None or self.rules.min_winding is None else trace.winding()
        out = vetoed(self.rules, self.now, changes=None if trace is None else trace.changes(), turn=turn,
                     winding=winding,
                     extension=self.extension.get(track_id), drag_at=self.drag_at.get(track_id),
                     unsteady_at=self.unsteady_at.get(track_id),
                     partner_age=None if partner is None else self.now - (self.now if first is None else first))
        where = self._where
        veto = [where[n] for n in out if n in where and n not in MOTION_BACKGROUND]
        if not veto or "no_motion" not in where:
            return probs
        probs = np.array(probs, np.float32, copy=True)
        probs[where["no_motion"]] += probs[veto].sum()
        probs[veto] = 0.0
        return probs

    def classify(self, hands: list, frame_shape: tuple[int, ...], now: float | None = None) -> np.ndarray:
        """This frame's hands (``rnn_jax.hands.Hand``) at time ``now`` (s) -> probabilities [len(hands), C]."""
        h, w = frame_shape[:2]
        views = np.stack([view_coords(hand.landmarks, (w, h)) for hand in hands]) if hands else np.zeros((0, 21, 2))
        flagged = ({hand.track_id for hand in hands if unsteady(self.rules, hand.presence, hand.landmarks, (w, h))}
                   if self.rules.min_presence is not None or self.rules.edge is not None else set())
        return self.step([hand.track_id for hand in hands], views, now, flagged)

    def reset(self) -> None:
        for d in (self.states, self.previous, self.seen_at, self.first_seen, self.partners, self.lost, self.relinked,
                  *self._memos):
            d.clear()
        self.duplicates = set()


def moving_now(features: np.ndarray) -> bool:
    """Does this frame show motion (the hand or its fingertip moving, the thumb-index spread or the hand's
    size changing, the distance to its partner changing) above :data:`ACTIVE_LEVEL`? A new dynamic gesture
    starting right after another needs it (``rnn_jax.live.hand_tracks``: the refractory period)."""
    m = features[:, 2]
    return bool(max(abs(m[0]), abs(m[1]), abs(m[2]), abs(m[3]), abs(m[6]), abs(m[9]), abs(m[16])) > ACTIVE_LEVEL)


def nearest_partners(track_ids: list[int], stats: dict[int, HandStats]) -> dict[int, int]:
    """Each hand's partner: the other hand whose centre is nearest (none when the hand is alone)."""
    if len(track_ids) < 2:
        return {}
    centres = np.array([stats[t].centre for t in track_ids])
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return {t: track_ids[int(np.argmin(d[i]))] for i, t in enumerate(track_ids)}


def find_duplicates(track_ids: list[int], stats: dict[int, HandStats], known: dict) -> set[int]:
    """Tracks on the same hand as another (centres closer than DUPLICATE_FRACTION of the smaller hand's
    size): the finder sometimes follows one hand twice. The hand already known (else the lower id) stays."""
    out: set[int] = set()
    for i, a in enumerate(track_ids):
        for b in track_ids[i + 1:]:
            (ax, ay), (bx, by) = stats[a].centre, stats[b].centre
            if ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 < DUPLICATE_FRACTION * min(stats[a].size, stats[b].size):
                keep_a = (a in known, -a) >= (b in known, -b)
                out.add(b if keep_a else a)
    return out


def check_motion_model(predictor: Any, where: str) -> None:
    """The static classifier slot was given a motion model: say where it goes."""
    if is_motion_info(getattr(predictor, "info", None)):
        raise ConfigError(f"{where} is a motion model (dynamic gestures): run it beside a static model with "
                          "--motion, e.g. --onnx landmarks.onnx --motion motion.onnx")
