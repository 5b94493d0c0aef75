"""The one **motion feature rule** for dynamic gestures (swipes, zoom, drag, taps, circles), numpy only.

Shared by training (:mod:`rnn_jax.data.motion`), export and the live loop
(:mod:`rnn_jax.live.motion` runs a motion model), like :mod:`rnn_jax.hands.features` for static
hands: what a model learns from is exactly what it sees live.

Coordinates: the **user's view** (the mirrored, selfie picture: what the user sees on screen,
so "swipe left" is the user's left and "clockwise" is clockwise as the user draws it), in
units of the frame's short side; y points down. The live loop gets camera pixels and turns
them into the user's view with :func:`view_coords`.

**Frame-rate independent** (version 2): every rate is per *second*, from the time between this
frame and the previous one (``dt``, which the live loop knows for each frame), so a swipe made
at 15 frames/s gives the same numbers as at 30.

Features of one hand in one frame, packed into the [21, 3] frame the landmark exporter and
runtime carry:

- ``[:, 0:2]`` the hand's **pose**: wrist-relative, divided by the hand's size (largest
  wrist-to-landmark distance), in the user's view (not mirrored by handedness: a circle's sense
  must survive). This is the pose conditioning: "drag" is a fist moving, a swipe an open hand,
  one finger or two;
- ``[:, 2]`` a motion vector (from this frame and the previous one, which the caller carries):
  0-1 index fingertip velocity, 2-3 wrist velocity, 4-5 velocity of the landmarks' mean (all
  x ``VELOCITY_SCALE`` per second), 6 rate of change of log hand size (x ``RATE_SCALE``; towards /
  away from the camera), 7 hand size (x 4), 8 thumb-index tip distance / hand size, 9 its rate
  of change (x ``RATE_SCALE``), 10 whether a previous frame exists (1) or not (0: every rate is
  0), 11 the frame interval (``dt`` x 30: 1.0 at 30 frames/s; 0 without a previous frame);
- the **partner hand** block (the other hand in view, for two-hand gestures; all zero when the
  hand is alone): 12 a partner exists (1), 13-14 the partner's centre minus this hand's (x 2),
  15 their distance (x 2), 16 its rate of change (x ``VELOCITY_SCALE`` per second; 0 unless both
  hands have a previous frame), 17-18 the partner's centre velocity (same scale), 19 the
  partner's thumb-index distance / its size; 20 zero.

Why a partner block rather than a two-hand model: one per-hand model stays one model, stepped
per hand live with its own state, and the two-hand relation (zoom: two hands moving apart) is
just seven numbers beside the hand's own motion; a hand alone sees zeros there.

Absent frames are all-zero landmarks (batched form): an all-zero ``prev`` or ``partner`` means
"none". A motion model's metadata ``features`` are :func:`feature_spec` (``{"rule": "motion",
...}``), which is how the live side tells a motion model from a static one (:func:`is_motion_info`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

RULE = "motion"
MOTION_FEATURE_VERSION = 2
VELOCITY_SCALE = 2.0 / 3.0  # per second: half the short side in 1/3 s (10 frames at 30 fps) -> 1.0
RATE_SCALE = 1.0 / 3.0  # rates of log size and of the thumb-index spread, per second
NOMINAL_DT = 1.0 / 30.0  # a frame's interval when nothing better is known
MAX_DT = 0.5  # a longer gap between two frames of a hand: no previous frame (its rates are unknown)
INDEX_TIP, THUMB_TIP, WRIST = 8, 4, 0
# the dynamic-gesture vocabulary (rnn_jax.data.motion builds its data, the live loop names events)
MOTION_CLASSES = ("swipe_left", "swipe_right", "swipe_up", "swipe_down", "zoom_in", "zoom_out",
                  "drag", "drop", "tap", "double_tap", "circle_cw", "circle_ccw", "still", "no_motion")
TWO_HAND_CLASSES = ("zoom_in", "zoom_out")  # may be made by a pair of hands (one event per pair live)


def feature_spec() -> dict[str, Any]:
    """The ``features`` entry of a motion model's metadata."""
    # "version" is read by the landmark runtime's own spec check (a motion file passes as version 1);
    # the motion rule's version is "motion_version" (absent in version-1 motion files)
    return {"rule": RULE, "version": 1, "motion_version": MOTION_FEATURE_VERSION, "velocity_scale": VELOCITY_SCALE,
            "rates": "per second", "partner": True,
            "coords": "user view (mirrored camera), units of the frame's short side"}


def motion_version(features: dict) -> int:
    """The motion feature rule's version a model file was trained with (1 before rates per second)."""
    return int(features.get("motion_version", 1))


def is_motion_info(info: Any) -> bool:
    features = getattr(info, "features", None)
    return isinstance(features, dict) and features.get("rule") == RULE


def view_coords(landmarks: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Camera-pixel landmarks [..., 21, >=2] of a (width, height) frame -> the user's view [..., 21, 2]."""
    w, h = frame_size
    if w <= 0 or h <= 0:
        raise ValueError(f"frame size must be positive, got {frame_size}")
    pts = np.asarray(landmarks, np.float64)[..., :2].copy()
    pts[..., 0] = w - pts[..., 0]
    return pts / float(min(w, h))


def _pose(view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rel = view - view[..., :1, :]
    size = np.sqrt((rel ** 2).sum(-1)).max(-1)
    return rel / np.maximum(size, 1e-9)[..., None, None], size


def _spread(pose: np.ndarray) -> np.ndarray:
    return np.sqrt(((pose[..., INDEX_TIP, :] - pose[..., THUMB_TIP, :]) ** 2).sum(-1))


def _present(x: np.ndarray) -> np.ndarray:
    return np.abs(x).sum((-1, -2)) > 0


def motion_features(view: np.ndarray, prev: np.ndarray | None = None, dt: float | np.ndarray = NOMINAL_DT,
                    partner: np.ndarray | None = None, partner_prev: np.ndarray | None = None) -> np.ndarray:
    """User-view frames [..., 21, 2], the hand's previous frames (same shape, or None), the seconds
    between them, and the other hand's frames now and before (or None) -> features [..., 21, 3]
    float32 (see the module docstring). All-zero frames are absent (an absent ``view`` gives zeros)."""
    cur = np.asarray(view, np.float64)
    if cur.shape == (21, 2):  # the live loop's case: one hand, one frame (fewer numpy calls)
        def stats(x: np.ndarray | None) -> HandStats | None:
            return None if x is None else hand_stats(x)
        return frame_features(hand_stats(cur), stats(prev), float(dt), stats(partner), stats(partner_prev))
    if cur.shape[-2:] != (21, 2):
        raise ValueError(f"view landmarks must be [..., 21, 2], got {list(cur.shape)}")
    zeros = np.zeros_like(cur)
    before = zeros if prev is None else np.broadcast_to(np.asarray(prev, np.float64), cur.shape)
    other = zeros if partner is None else np.broadcast_to(np.asarray(partner, np.float64), cur.shape)
    other_before = zeros if partner_prev is None else np.broadcast_to(np.asarray(partner_prev, np.float64), cur.shape)
    dt = np.broadcast_to(np.asarray(dt, np.float64), cur.shape[:-2])
    here = _present(cur)
    moving = here & _present(before) & (dt > 0) & (dt <= MAX_DT)
    paired = here & _present(other)
    paired_moving = paired & moving & _present(other_before)
    rate = np.where(moving, 1.0 / np.where(dt > 0, dt, 1.0), 0.0)
    pose, size = _pose(cur)
    ppose, psize = _pose(before)
    out = np.zeros(cur.shape[:-1] + (3,), np.float64)
    out[..., :2] = pose
    m = out[..., 2]
    spread = _spread(pose)
    v = VELOCITY_SCALE * rate
    m[..., 0:2] = v[..., None] * (cur[..., INDEX_TIP, :] - before[..., INDEX_TIP, :])
    m[..., 2:4] = v[..., None] * (cur[..., WRIST, :] - before[..., WRIST, :])
    m[..., 4:6] = v[..., None] * (cur.mean(-2) - before.mean(-2))
    m[..., 6] = RATE_SCALE * rate * np.log(np.maximum(size, 1e-6) / np.maximum(psize, 1e-6))
    m[..., 7] = 4.0 * size
    m[..., 8] = spread
    m[..., 9] = RATE_SCALE * rate * (spread - _spread(ppose))
    m[..., 10] = moving
    m[..., 11] = np.where(moving, dt * 30.0, 0.0)
    centre, pcentre = cur.mean(-2), other.mean(-2)
    rel = pcentre - centre
    dist = np.sqrt((rel ** 2).sum(-1))
    pdist = np.sqrt(((other_before.mean(-2) - before.mean(-2)) ** 2).sum(-1))
    m[..., 12] = paired
    m[..., 13:15] = 2.0 * rel * paired[..., None]
    m[..., 15] = 2.0 * dist * paired
    prate = v * paired_moving
    m[..., 16] = prate * (dist - pdist)
    m[..., 17:19] = prate[..., None] * (pcentre - other_before.mean(-2))
    m[..., 19] = _spread(_pose(other)[0]) * paired
    m[..., :20] = np.clip(m[..., :20], -10.0, 10.0)  # a tracker jump is not a gesture
    out = np.where(here[..., None, None], out, 0.0)
    return out.astype(np.float32)


class HandStats(NamedTuple):
    """What the one-frame rule needs of one hand in one frame (the live runtime keeps a hand's stats
    for the next frame and for its partner, so each hand is measured once per frame)."""

    pose: np.ndarray  # [21, 2] wrist-relative / size
    size: float
    spread: float
    centre: tuple[float, float]
    tip: tuple[float, float]
    wrist: tuple[float, float]


def hand_stats(x: np.ndarray) -> HandStats:
    """One hand's user-view landmarks [21, 2] -> its :class:`HandStats`."""
    x = np.asarray(x, np.float64)
    rel = x - x[0]
    size = max(math.sqrt(float((rel * rel).sum(1).max())), 1e-9)
    pose = rel / size
    (tx, ty), (hx, hy) = pose[INDEX_TIP].tolist(), pose[THUMB_TIP].tolist()
    cx, cy = x.mean(0).tolist()
    return HandStats(pose, size, math.hypot(tx - hx, ty - hy), (cx, cy), tuple(x[INDEX_TIP].tolist()),
                     tuple(x[WRIST].tolist()))


def frame_features(cur: HandStats, prev: HandStats | None, dt: float, partner: HandStats | None = None,
                   partner_prev: HandStats | None = None) -> np.ndarray:
    """:func:`motion_features` of one hand in one frame from its stats (same numbers, a few times faster)."""
    m = [0.0] * 21
    m[7], m[8] = 4.0 * cur.size, cur.spread
    moving = prev is not None and 0.0 < dt <= MAX_DT
    (cx, cy) = cur.centre
    if moving:
        assert prev is not None
        v = VELOCITY_SCALE / dt
        m[0], m[1] = v * (cur.tip[0] - prev.tip[0]), v * (cur.tip[1] - prev.tip[1])
        m[2], m[3] = v * (cur.wrist[0] - prev.wrist[0]), v * (cur.wrist[1] - prev.wrist[1])
        m[4], m[5] = v * (cx - prev.centre[0]), v * (cy - prev.centre[1])
        m[6] = RATE_SCALE / dt * math.log(max(cur.size, 1e-6) / max(prev.size, 1e-6))
        m[9] = RATE_SCALE / dt * (cur.spread - prev.spread)
        m[10], m[11] = 1.0, dt * 30.0
    if partner is not None:
        ox, oy = partner.centre
        rx, ry = ox - cx, oy - cy
        dist = math.hypot(rx, ry)
        m[12], m[13], m[14], m[15] = 1.0, 2.0 * rx, 2.0 * ry, 2.0 * dist
        if moving and partner_prev is not None:
            assert prev is not None
            v = VELOCITY_SCALE / dt
            qx, qy = partner_prev.centre
            m[16] = v * (dist - math.hypot(qx - prev.centre[0], qy - prev.centre[1]))
            m[17], m[18] = v * (ox - qx), v * (oy - qy)
        m[19] = partner.spread
    out = np.empty((21, 3), np.float32)
    out[:, :2] = cur.pose
    out[:, 2] = m
    np.clip(out[:20, 2], -10.0, 10.0, out=out[:20, 2])
    return out


def sequence_features(view: np.ndarray, times: np.ndarray | None = None, partner: np.ndarray | None = None,
                      first_has_prev: bool = False) -> np.ndarray:
    """A sequence [T, 21, 2] (or batch [B, T, 21, 2]; all-zero frames absent), its frame times [.., T]
    in seconds (None: ``NOMINAL_DT`` apart) and the partner hand's frames (same shape, or None) ->
    features [.., T, 21, 3], each frame with the one before it; frame 0 has none (unless
    ``first_has_prev``, where frame 0 is itself a context frame and the result has T - 1 frames)."""
    v = np.asarray(view, np.float64)
    t = np.arange(v.shape[-3]) * NOMINAL_DT if times is None else np.asarray(times, np.float64)
    t = np.broadcast_to(t, v.shape[:-2])
    p = np.zeros_like(v) if partner is None else np.asarray(partner, np.float64)
    rest = motion_features(v[..., 1:, :, :], v[..., :-1, :, :], np.diff(t, axis=-1), p[..., 1:, :, :],
                           p[..., :-1, :, :])
    if first_has_prev:
        return rest
    first = motion_features(v[..., :1, :, :], None, NOMINAL_DT, p[..., :1, :, :], None)
    return np.concatenate([first, rest], axis=-3)
