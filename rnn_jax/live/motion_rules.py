"""Decoding rules of dynamic gestures live: which classes a hand may *start* this frame (numpy only).

The motion model reads each hand's last frames; these rules veto a class before the hand's
motion tracker sees it (its probability goes to ``no_motion``), where what the model saw cannot
be that gesture. Each rule is a fact about the gesture, not about the model, and each was found
by the pixel-level check (``tools/motion_videos.py``, tuned on its ``tune`` people only):

- **what it is made of** (``evidence_s``): each gesture changes something, and over the last
  ``evidence_s`` seconds of the hand (its :class:`Trace`) that something must have changed by more
  than landmark jitter: a swipe, circle or drag moved the fingertip or the hand's centre by
  ``move``; a tap or one-hand zoom changed the thumb-index spread by ``spread``; a two-hand zoom
  changed the hands' distance by ``move`` (or the spread, one-handed); a drop changed the spread or
  the hand's log size by ``spread``. A hand just found has changed nothing yet: the model, seeing
  an open hand appear, read it as the end of a ``drop`` (a fist that opened), a fist as a closing
  ``zoom_out``, an L or two fingers as a pinch. Ranges, not per-frame rates: jitter does not add up.
- **straight swipes** (``max_turn``, ``turn_s``): a swipe is a straight stroke. While the hand's
  centre turns by more than ``max_turn`` degrees between the two halves of its last ``turn_s``
  seconds (each half moving at least ``turn_move``), no swipe starts: a circle's first arc looked
  like a swipe to the model.
- **circles turn** (``min_winding``): a circle starts only once the hand's centre has turned
  through ``min_winding`` degrees over the last ``evidence_s`` (a swipe's end read as a circle).
- **the hand's shape** (``finger_open``): a swipe is made with an open hand, one or two fingers,
  a drag with a fist. A swipe starts only while one of the hand's four fingers is out (its tip
  at least ``finger_open`` times as far from the wrist as its knuckle), a drag only while none
  is: a moving fist read as a swipe, two fingers moving read as a drag.
- **drop after drag** (``drop_after_s``): a ``drop`` is the fist opening after its move; it
  starts only if the model's top class for that hand was ``drag`` within the last ``drop_after_s``.
- **steady landmarks** (``size_jump``, ``flicker_s``, ``min_presence``, ``edge``, ``unsteady_s``): the
  pose-change gestures (tap, double tap, drop, one-hand zoom) are read from the landmarks' shape;
  while the finder's landmarks of that hand flicker in size (a jump of more than ``size_jump`` in
  log size, then one back within ``flicker_s``), its presence score is low or its box touches the
  frame's edge, and for ``unsteady_s`` after, they start nothing (the hand holding a glass in
  Megamind.avi: its landmarks' size jumps back and forth by up to 25% from frame to frame).
- **settled partner** (``partner_age_s``): a hand whose nearest other hand has been tracked for
  under ``partner_age_s`` starts no zoom (the finder settling on a second hand is no zoom).

:data:`NO_RULES` turns every rule off (the decoding before these rules).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from rnn_jax.errors import ConfigError

POSE_CHANGE = ("tap", "double_tap", "drop", "zoom_in", "zoom_out")  # read from the hand's shape
ZOOM = ("zoom_in", "zoom_out")
MOVES = ("swipe_left", "swipe_right", "swipe_up", "swipe_down", "circle_cw", "circle_ccw", "drag")


@dataclass(frozen=True)
class MotionRules:
    """Thresholds of the decoding rules (module docstring); ``None`` turns a rule off."""

    evidence_s: float | None = 0.8
    move: float = 0.08  # short sides: a gesture's own change over evidence_s (jitter stays under ~0.01)
    spread: float = 0.25  # thumb-index spread / hand size (and log size, for drop)
    max_turn: float | None = 30.0  # degrees
    turn_s: float = 0.2
    turn_move: float = 0.03  # short sides each half must move for a heading (a swipe's slow end has none)
    min_winding: float | None = 90.0  # degrees
    finger_open: float | None = 1.4
    drop_after_s: float | None = 1.5
    size_jump: float | None = 0.1
    min_presence: float | None = 0.5
    edge: float | None = 0.01  # of the frame's short side: a landmark box within this of an edge
    flicker_s: float = 0.4
    unsteady_s: float = 0.6
    partner_age_s: float | None = 0.25

    def __post_init__(self) -> None:
        for name in ("evidence_s", "max_turn", "min_winding", "finger_open", "drop_after_s", "size_jump", "min_presence", "edge", "partner_age_s"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ConfigError(f"motion rule {name} must be >= 0 or None, got {value}")
        for name in ("flicker_s", "unsteady_s", "move", "spread", "turn_s", "turn_move"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"motion rule {name} must be >= 0, got {getattr(self, name)}")


DEFAULT_RULES = MotionRules()
NO_RULES = MotionRules(evidence_s=None, max_turn=None, min_winding=None, finger_open=None, drop_after_s=None, size_jump=None, min_presence=None, edge=None,
                       unsteady_s=0.0, partner_age_s=None)


class Trace:
    """One hand's recent frames (time, fingertip, centre, log size, spread, partner distance), for the
    evidence and turn rules: each kept in its own short deque (builtin min / max over ~24 numbers is
    cheaper than numpy per frame)."""

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self.t: deque[float] = deque()
        self.cols: tuple[deque[float], ...] = tuple(deque() for _ in range(6))  # tip x, y, centre x, y, log size, spread
        self.pair: deque[tuple[float, float]] = deque()  # (time, partner distance) when there was a partner

    @property
    def rows(self) -> list[tuple[float, ...]]:
        """The kept frames as (time, tip x, tip y, centre x, centre y, log size, spread)."""
        return list(zip(self.t, *self.cols))

    def add(self, now: float, tip: tuple[float, float], centre: tuple[float, float], size: float, spread: float,
            partner_distance: float | None) -> None:
        self.t.append(now)
        for col, x in zip(self.cols, (*tip, *centre, math.log(max(size, 1e-9)), spread)):
            col.append(x)
        if partner_distance is not None:
            self.pair.append((now, partner_distance))
        while self.t and now - self.t[0] > self.keep:
            self.t.popleft()
            for col in self.cols:
                col.popleft()
        while self.pair and now - self.pair[0][0] > self.keep:
            self.pair.popleft()

    def turn(self, span: float, least: float = 0.01) -> float:
        """Degrees between the centre's displacement in the first and in the second half of the last
        ``span`` seconds (0 when either half moved under ``least`` short sides: a hand at rest has no heading)."""
        n = len(self.t)
        if n < 3:
            return 0.0
        now, k = self.t[-1], n - 1
        while k > 0 and now - self.t[k - 1] <= span + 1e-9:
            k -= 1
        if n - k < 3:
            return 0.0
        xs, ys = self.cols[2], self.cols[3]
        m = k + (n - k) // 2
        ax, ay, bx, by = xs[m] - xs[k], ys[m] - ys[k], xs[-1] - xs[m], ys[-1] - ys[m]
        na, nb = math.hypot(ax, ay), math.hypot(bx, by)
        if min(na, nb) < least:
            return 0.0
        return math.degrees(math.acos(max(-1.0, min(1.0, (ax * bx + ay * by) / (na * nb)))))

    def changes(self) -> dict[str, float]:
        """Over the kept frames: how far the fingertip or centre got from where it was (``move``), the
        range of the spread, of the log size and of the partner distance (0 without two frames)."""
        if len(self.t) < 2:
            return {"move": 0.0, "spread": 0.0, "size": 0.0, "pair": 0.0}
        ranges = [max(c) - min(c) for c in self.cols]
        pair = [d for _, d in self.pair]
        return {"move": max(ranges[:4]), "spread": ranges[5], "size": ranges[4],
                "pair": max(pair) - min(pair) if len(pair) > 1 else 0.0}

    def winding(self, least: float = 0.01) -> float:
        """Degrees the centre's heading turned over the kept frames (absolute, summed signed steps between
        successive displacements of at least ``least`` short sides: jitter has no heading)."""
        xs, ys = self.cols[2], self.cols[3]
        total, last, px, py = 0.0, None, None, None
        for x, y in zip(xs, ys):
            if px is None:
                px, py = x, y
                continue
            dx, dy = x - px, y - py
            if math.hypot(dx, dy) < least:
                continue
            heading = math.atan2(dy, dx)
            if last is not None:
                total += (heading - last + math.pi) % (2 * math.pi) - math.pi
            last, px, py = heading, x, y
        return abs(math.degrees(total))


def unmade(rules: MotionRules, changes: dict[str, float], has_partner: bool) -> set[str]:
    """The gestures whose own change is missing from ``changes`` (:meth:`Trace.changes`)."""
    if rules.evidence_s is None:
        return set()
    out: set[str] = set()
    if changes["move"] < rules.move:
        out.update(MOVES)
    spread = changes["spread"] >= rules.spread
    if not spread:
        out.update(("tap", "double_tap"))
        if not (has_partner and changes["pair"] >= rules.move):
            out.update(ZOOM)
        if changes["size"] < rules.spread:
            out.add("drop")
    return out


def vetoed(rules: MotionRules, now: float, *, changes: dict[str, float] | None, drag_at: float | None,
           unsteady_at: float | None, partner_age: float | None, turn: float = 0.0,
           extension: float | None = None, winding: float | None = None) -> set[str]:
    """The classes this hand may not start now (``changes``: its :meth:`Trace.changes`; ``*_at``: the last
    time, s, it showed ``drag`` / had unsteady landmarks; ``partner_age``: its partner's tracked seconds,
    None when alone; ``turn``: its :meth:`Trace.turn` over ``turn_s``; ``extension``: its :func:`finger_extension`)."""
    out: set[str] = set()
    if changes is not None:
        out |= unmade(rules, changes, partner_age is not None)
    if rules.max_turn is not None and turn > rules.max_turn:
        out.update(m for m in MOVES if m.startswith("swipe"))
    if rules.min_winding is not None and winding is not None and winding < rules.min_winding:
        out.update(("circle_cw", "circle_ccw"))
    if rules.finger_open is not None and extension is not None:
        if extension < rules.finger_open:
            out.update(m for m in MOVES if m.startswith("swipe"))
        else:
            out.add("drag")
    if rules.drop_after_s is not None and (drag_at is None or now - drag_at > rules.drop_after_s):
        out.add("drop")
    if unsteady_at is not None and now - unsteady_at <= rules.unsteady_s:
        out.update(POSE_CHANGE if partner_age is None else ("tap", "double_tap", "drop"))
    if rules.partner_age_s is not None and partner_age is not None and partner_age < rules.partner_age_s:
        out.update(ZOOM)
    return out


FINGERS = ((8, 5), (12, 9), (16, 13), (20, 17))  # (tip, knuckle) of the index, middle, ring and little finger


def finger_extension(pose: np.ndarray) -> float:
    """The most extended finger of a hand's wrist-relative pose [21, 2]: its tip's distance from the wrist
    over its knuckle's (a fist ~0.9, a finger out ~1.9 on the finder's landmarks of HaGRID photos)."""
    return max(math.hypot(*pose[t]) / max(math.hypot(*pose[k]), 1e-9) for t, k in FINGERS)


def unsteady(rules: MotionRules, presence: float | None, landmarks: np.ndarray | None,
             frame: tuple[int, int]) -> bool:
    """Is a hand's presence score low or one of its landmarks ([21, 2+] pixels) within ``edge`` of the
    frame's (width, height) edge or outside it?"""
    if rules.min_presence is not None and presence is not None and presence < rules.min_presence:
        return True
    if rules.edge is not None and landmarks is not None:
        w, h = frame
        margin = rules.edge * min(w, h)
        (x0, y0), (x1, y1) = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
        if x0 <= margin or y0 <= margin or x1 >= w - margin or y1 >= h - margin:
            return True
    return False


def size_flicker(rules: MotionRules, now: float, ratio: float | None,
                 last: tuple[float, float] | None) -> tuple[bool, tuple[float, float] | None]:
    """A hand's size / its previous frame's (``ratio``) and its last jump (time, log ratio) -> (does its size
    flicker: a jump over ``size_jump`` back against one within ``flicker_s``; the last jump now). A fist
    opening (a drop) or a hand coming closer grows one way; the landmarks of a half-hidden hand jump back
    and forth."""
    if rules.size_jump is None or ratio is None:
        return False, last
    jump = math.log(max(ratio, 1e-9))
    if abs(jump) <= rules.size_jump:
        return False, last
    back = last is not None and now - last[0] <= rules.flicker_s and last[1] * jump < 0
    return back, (now, jump)
