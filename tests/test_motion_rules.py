"""The live decoding rules of dynamic gestures (rnn_jax/live/motion_rules.py): each vetoes what the pixel-level
check showed firing wrongly, through the live path (MotionModel + HandTracks) with a model that always says the
same class, and each leaves the real gesture alone."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from rnn_jax.errors import ConfigError
from rnn_jax.hands.finder import Hand
from rnn_jax.hands.geometry import Rect
from rnn_jax.hands.motion_features import MOTION_CLASSES, feature_spec, hand_stats, view_coords
from rnn_jax.live.hand_tracks import HandTracks
from rnn_jax.live.motion import MotionModel
from rnn_jax.live.motion_rules import (
    DEFAULT_RULES,
    NO_RULES,
    POSE_CHANGE,
    MotionRules,
    Trace,
    finger_extension,
    size_flicker,
    unsteady,
    vetoed,
)
from rnn_jax.live.smoothing import GestureConfig

W, H = 640, 480
FPS = 30.0


class SaysOneClass:
    """A motion 'model' whose top class is scripted per call (its state counts frames)."""

    def __init__(self, script) -> None:
        self.script, self.calls = script, 0
        self.info = SimpleNamespace(features=feature_spec(), reject_threshold=None)
        self.class_names = MOTION_CLASSES
        self.path = "scripted"

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros((n, 1), np.float32)

    def predict(self, x: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        label = self.script(self.calls) if callable(self.script) else self.script
        self.calls += 1
        probs = np.full((len(x), len(MOTION_CLASSES)), 0.01, np.float32)
        probs[:, MOTION_CLASSES.index(label)] = 1.0 - 0.01 * (len(MOTION_CLASSES) - 1)
        return probs, state + 1


def hand(track_id: int, x: float, y: float = 240.0, size: float = 80.0, spread: float = 0.5,
         presence: float = 0.99, fist: bool = False) -> Hand:
    """A hand in camera pixels: wrist at (x, y), ``size`` px from wrist to the middle fingertip, its thumb
    tip ``spread`` x size from the index tip; ``fist``: the four fingers curled (tips by the knuckles)."""
    pts = np.zeros((21, 3))
    for finger in range(5):
        for joint in range(4):
            reach = (0.25, 0.31, 0.29, 0.24)[joint] if fist and finger else 0.25 + 0.25 * joint
            pts[1 + 4 * finger + joint] = ((-0.3 + 0.15 * finger) * size, -reach * size, 0)
    tip = pts[8, :2]
    pts[4, :2] = tip + (spread * size, 0.0)  # the thumb tip, level with the index tip
    pts[:, 0] += x
    pts[:, 1] += y
    return Hand(pts, presence, "right", 0.9, Rect(x, y - size / 2, size * 1.5, 0.0), track_id, True, (W, H))


def starts(model: SaysOneClass, frames: list[list[Hand]], rules: MotionRules = DEFAULT_RULES) -> list[str]:
    """The dynamic events started over ``frames`` (30 frames/s) by the live motion path."""
    motion = MotionModel(model, rules=rules)
    tracks = HandTracks(("a",), GestureConfig(), motion)
    out = []
    for i, hands in enumerate(frames):
        probs = motion.classify(hands, (H, W, 3), i / FPS)
        _, events = tracks.update([(h, np.zeros(1, np.float32)) for h in hands], probs, i, (H, W, 3))
        out += [e.label for e in events if e.dynamic and e.kind == "started"]
    return out


def still(n: int, **kw) -> list[list[Hand]]:
    rng = np.random.default_rng(0)
    return [[hand(1, 300 + rng.normal(0, 0.7), 240 + rng.normal(0, 0.7), **kw)] for _ in range(n)]


# ------------------------------------------------------------------ motion first
def test_a_hand_just_found_and_still_starts_nothing() -> None:
    # a fresh open hand read as the end of a drop, a fist as zoom_out, an L as a tap: no change, no gesture
    for label in ("drop", "zoom_out", "tap", "swipe_left", "circle_cw"):
        assert starts(SaysOneClass(label), still(30)) == []
        assert starts(SaysOneClass(label), still(30), NO_RULES) == [label]  # what it was before the rules


def test_each_gesture_passes_with_its_own_change() -> None:
    swipe = still(10) + [[hand(1, 300 - 20 * i)] for i in range(1, 10)]
    assert starts(SaysOneClass("swipe_left"), swipe) == ["swipe_left"]
    pinch = still(10) + [[hand(1, 300, spread=s)] for s in (0.4, 0.25, 0.1, 0.05, 0.1, 0.3, 0.5, 0.5, 0.5)]
    assert starts(SaysOneClass("tap"), pinch) == ["tap"]
    assert starts(SaysOneClass("tap"), swipe) == []  # a move is no pinch
    assert starts(SaysOneClass("swipe_left"), pinch) == []  # nor a pinch a move


def test_trace_ranges_not_rates() -> None:
    trace = Trace(0.8)
    rng = np.random.default_rng(1)
    for i in range(60):  # two seconds of jitter at 30 frames/s: it does not add up
        trace.add(i / FPS, (0.5 + rng.normal(0, 0.003), 0.5), (0.5, 0.5 + rng.normal(0, 0.003)), 0.2,
                  0.5 + rng.normal(0, 0.02), None)
    c = trace.changes()
    assert c["move"] < DEFAULT_RULES.move and c["spread"] < DEFAULT_RULES.spread and c["pair"] == 0.0
    assert trace.rows[0][0] >= 59 / FPS - 0.8 - 1e-9  # only the last 0.8 s are kept


# ------------------------------------------------------------------ straight swipes
def circle(n: int, turns_per_s: float = 1.0, radius: float = 70.0) -> list[list[Hand]]:
    """From (300, 240), clockwise on screen (camera pixels; the user's view is mirrored)."""
    return [[hand(1, 300 - radius + radius * math.cos(2 * math.pi * turns_per_s * i / FPS),
                  240 + radius * math.sin(2 * math.pi * turns_per_s * i / FPS))] for i in range(n)]


def test_a_circles_arc_starts_no_swipe_a_straight_stroke_does() -> None:
    arc = still(10) + circle(20)
    late_swipe = lambda k: "still" if k < 16 else "swipe_down"  # noqa: E731 (the model reads a swipe ~0.2 s in)
    assert starts(SaysOneClass(late_swipe), arc) == []
    assert starts(SaysOneClass(late_swipe), arc, replace(DEFAULT_RULES, max_turn=None)) == ["swipe_down"]
    assert starts(SaysOneClass("circle_cw"), arc) == ["circle_cw"]  # the circle itself is not vetoed
    stroke = still(10) + [[hand(1, 300, 240 + 18 * i + 3 * math.sin(i))] for i in range(1, 12)]
    assert starts(SaysOneClass("swipe_down"), stroke) == ["swipe_down"]


def test_turn_needs_a_heading_in_both_halves() -> None:
    trace = Trace(0.8)
    for i in range(7):  # a swipe's slow end: 2 px a frame in a new direction is no turn
        trace.add(i / FPS, (0, 0), (0.002 * i, 0.0) if i < 4 else (0.006, 0.002 * (i - 3)), 0.2, 0.5, None)
    assert trace.turn(0.2, 0.03) == 0.0
    trace = Trace(0.8)
    for i in range(7):  # a right angle at speed
        trace.add(i / FPS, (0, 0), (0.03 * min(i, 3), 0.03 * max(i - 3, 0)), 0.2, 0.5, None)
    assert trace.turn(0.2, 0.03) == pytest.approx(90.0, abs=1.0)


# ------------------------------------------------------------------ circles turn
def test_a_circle_needs_its_turn_a_swipes_end_is_none() -> None:
    stroke_end = still(10) + [[hand(1, 300 + 18 * i)] for i in range(1, 10)] + [[hand(1, 462 + 2 * i)] for i in range(6)]
    assert starts(SaysOneClass("circle_ccw"), stroke_end) == []
    assert starts(SaysOneClass("circle_ccw"), stroke_end, replace(DEFAULT_RULES, min_winding=None)) == ["circle_ccw"]
    assert starts(SaysOneClass("circle_cw"), still(10) + circle(25)) == ["circle_cw"]
    trace = Trace(0.8)
    for i, (x, y) in enumerate(zip(np.cos(np.linspace(0, np.pi, 13)), np.sin(np.linspace(0, np.pi, 13)))):
        trace.add(i / FPS, (0, 0), (0.1 * x, 0.1 * y), 0.2, 0.5, None)
    assert trace.winding() == pytest.approx(180.0, abs=16.0)  # half a turn (heading changes between 12 steps)


# ------------------------------------------------------------------ the hand's shape
def test_a_moving_fist_is_no_swipe_and_an_open_hand_no_drag() -> None:
    fist = still(10, fist=True) + [[hand(1, 300 - 20 * i, fist=True)] for i in range(1, 10)]
    palm = still(10) + [[hand(1, 300 - 20 * i)] for i in range(1, 10)]
    assert starts(SaysOneClass("swipe_left"), fist) == []
    assert starts(SaysOneClass("swipe_left"), fist, replace(DEFAULT_RULES, finger_open=None)) == ["swipe_left"]
    assert starts(SaysOneClass("drag"), palm) == []
    assert starts(SaysOneClass("drag"), fist) == ["drag"] and starts(SaysOneClass("swipe_left"), palm) == ["swipe_left"]
    assert finger_extension(hand_stats(view_coords(hand(1, 300, fist=True).landmarks, (W, H))).pose) < 1.2
    assert finger_extension(hand_stats(view_coords(hand(1, 300).landmarks, (W, H))).pose) > 1.8


# ------------------------------------------------------------------ drop after drag
def test_drop_needs_the_drag_before_it() -> None:
    opening = [[hand(1, 300, size=s, spread=p)] for s, p in ((60, 0.1), (68, 0.25), (76, 0.4), (80, 0.5))]
    moving_fist = [[hand(1, 200 + 12 * i, size=60, spread=0.1, fist=True)] for i in range(15)]
    opened = [[hand(1, 380, size=80, spread=0.5)]] * 8
    assert starts(SaysOneClass("drop"), still(12, size=60, spread=0.1, fist=True) + opening + opened) == []
    script = lambda k: "drag" if k < 20 else "drop"  # noqa: E731
    frames = still(5, size=60, spread=0.1, fist=True) + moving_fist + [[hand(1, 380, size=s, spread=p)] for s, p in
                                                                       ((60, 0.1), (68, 0.25), (76, 0.4), (80, 0.5))]
    frames += opened
    assert starts(SaysOneClass(script), frames) == ["drag", "drop"]
    assert vetoed(DEFAULT_RULES, 5.0, changes=None, drag_at=4.0, unsteady_at=None, partner_age=None) == set()
    assert "drop" in vetoed(DEFAULT_RULES, 5.0, changes=None, drag_at=3.0, unsteady_at=None, partner_age=None)


# ------------------------------------------------------------------ steady landmarks
def test_landmarks_that_jump_in_size_start_no_pose_change() -> None:
    # the glass in Megamind: the finder's landmarks of a half-hidden hand change size frame to frame
    # (and the thumb-index spread with them: evidence of a pinch that is not one)
    flicker = still(10) + [[hand(1, 300, size=80 * (1.25 if i % 2 else 1.0), spread=0.1 if i % 2 else 0.5)]
                           for i in range(20)]
    assert starts(SaysOneClass("tap"), flicker) == []
    assert starts(SaysOneClass("tap"), flicker, replace(DEFAULT_RULES, size_jump=None)) == ["tap"]
    assert size_flicker(DEFAULT_RULES, 1.0, 1.25, (0.9, -0.2)) == (True, (1.0, math.log(1.25)))  # back and forth
    assert size_flicker(DEFAULT_RULES, 1.0, 1.25, (0.9, 0.2))[0] is False  # growing (a fist opening)
    assert size_flicker(DEFAULT_RULES, 1.0, 1.25, (0.5, -0.2))[0] is False  # long after
    assert size_flicker(DEFAULT_RULES, 1.0, 1.05, (0.9, -0.2)) == (False, (0.9, -0.2))  # no jump
    assert unsteady(DEFAULT_RULES, 0.3, None, (W, H))  # low presence
    at_edge = hand(1, 20).landmarks  # its little finger reaches x = 20 - 0.3 * 80 < 0
    assert unsteady(DEFAULT_RULES, None, at_edge, (W, H)) and not unsteady(DEFAULT_RULES, 0.9, hand(1, 300).landmarks,
                                                                              (W, H))
    alone = vetoed(DEFAULT_RULES, 1.0, changes=None, drag_at=1.0, unsteady_at=0.8, partner_age=None)
    paired = vetoed(DEFAULT_RULES, 1.0, changes=None, drag_at=1.0, unsteady_at=0.8, partner_age=1.0)
    assert set(POSE_CHANGE) <= alone and "zoom_in" not in paired and "tap" in paired


def test_a_hand_at_the_frame_edge_starts_no_tap() -> None:
    pinch = [[hand(1, 300, y=478, spread=s)] for s in [0.5] * 10 + [0.4, 0.25, 0.1, 0.05, 0.1, 0.3, 0.5, 0.5, 0.5]]
    assert starts(SaysOneClass("tap"), pinch) == []  # its wrist 2 px from the bottom: the rest may be cut off
    assert starts(SaysOneClass("tap"), pinch, replace(DEFAULT_RULES, edge=None)) == ["tap"]


# ------------------------------------------------------------------ settled partner
def test_no_zoom_while_the_second_hand_is_new() -> None:
    # hand 1 alone, then the finder finds hand 2 far away and moving in: their distance changes at once
    frames = still(15) + [[hand(1, 300), hand(2, 560 - 25 * i)] for i in range(6)]
    assert starts(SaysOneClass("zoom_out"), frames) == []
    assert starts(SaysOneClass("zoom_out"), frames, replace(DEFAULT_RULES, partner_age_s=None)) == ["zoom_out"]
    settled = still(15) + [[hand(1, 300), hand(2, 560)]] * 10 + [[hand(1, 300), hand(2, 560 - 25 * i)]
                                                                 for i in range(6)]
    assert starts(SaysOneClass("zoom_out"), settled) == ["zoom_out"]


def test_no_rules_and_bad_values() -> None:
    assert vetoed(NO_RULES, 9.0, changes={"move": 0.0, "spread": 0.0, "size": 0.0, "pair": 0.0}, drag_at=None,
                  unsteady_at=None, partner_age=0.0, turn=180.0) == set()
    with pytest.raises(ConfigError, match="move"):
        MotionRules(move=-1)
    with pytest.raises(ConfigError, match="size_jump"):
        MotionRules(size_jump=-0.1)
