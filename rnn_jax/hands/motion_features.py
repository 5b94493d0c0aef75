"""The one **motion feature rule** for dynamic gestures (swipes, zoom, circles), numpy only.

Shared by training (:mod:`rnn_jax.data.motion`), export and the live loop
(:mod:`rnn_jax.live.motion` runs a motion model), like :mod:`rnn_jax.hands.features` for static
hands: what a model learns from is exactly what it sees live.

Coordinates: the **user's view** (the mirrored, selfie picture: what the user sees on screen,
so "swipe left" is the user's left and "clockwise" is clockwise as the user draws it), in
units of the frame's short side; y points down. The live loop gets camera pixels and turns
them into the user's view with :func:`view_coords`.

Features of one frame, packed into the [21, 3] frame the landmark exporter and runtime carry:

- ``[:, 0:2]`` the hand's pose: wrist-relative, divided by the hand's size (largest
  wrist-to-landmark distance), in the user's view (not mirrored by handedness: a circle's sense
  must survive);
- ``[:, 2]`` a motion vector (from this frame and the previous one, which the caller carries):
  0-1 index fingertip velocity, 2-3 wrist velocity, 4-5 velocity of the landmarks' mean (all
  x ``VELOCITY_SCALE`` per frame), 6 change of log hand size (x 10; towards / away from the
  camera), 7 hand size (x 4), 8 thumb-index tip distance / hand size, 9 its change (x 10),
  10 whether a previous frame exists (1) or not (0: the velocities are 0); 11-20 zero.

A motion model's metadata ``features`` are :func:`feature_spec` (``{"rule": "motion", ...}``),
which is how the live side tells a motion model from a static one (:func:`is_motion_info`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

RULE = "motion"
MOTION_FEATURE_VERSION = 1
VELOCITY_SCALE = 20.0  # a move of half the short side in 10 frames -> 1.0 per frame
INDEX_TIP, THUMB_TIP, WRIST = 8, 4, 0
# the dynamic-gesture vocabulary (rnn_jax.data.motion builds its data, the live loop names events)
MOTION_CLASSES = ("swipe_left", "swipe_right", "swipe_up", "swipe_down", "zoom_in", "zoom_out",
                  "circle_cw", "circle_ccw", "still", "no_motion")


def feature_spec() -> dict[str, Any]:
    """The ``features`` entry of a motion model's metadata."""
    return {"rule": RULE, "version": MOTION_FEATURE_VERSION, "velocity_scale": VELOCITY_SCALE,
            "coords": "user view (mirrored camera), units of the frame's short side"}


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


def motion_features(view: np.ndarray, prev: np.ndarray | None = None) -> np.ndarray:
    """User-view frames [..., 21, 2] (and the frames before them, same shape, or None = no previous
    frame) -> packed features [..., 21, 3] float32 (see the module docstring)."""
    cur = np.asarray(view, np.float64)
    if cur.shape == (21, 2):  # the live loop's case: one hand, one frame (fewer numpy calls)
        return _frame_features(cur, None if prev is None else np.asarray(prev, np.float64))
    if cur.shape[-2:] != (21, 2):
        raise ValueError(f"view landmarks must be [..., 21, 2], got {list(cur.shape)}")
    pose, size = _pose(cur)
    out = np.zeros(cur.shape[:-1] + (3,), np.float64)
    out[..., :2] = pose
    m = out[..., 2]
    spread = np.sqrt(((pose[..., INDEX_TIP, :] - pose[..., THUMB_TIP, :]) ** 2).sum(-1))
    m[..., 7] = 4.0 * size
    m[..., 8] = spread
    if prev is not None:
        before = np.asarray(prev, np.float64)
        ppose, psize = _pose(before)
        pspread = np.sqrt(((ppose[..., INDEX_TIP, :] - ppose[..., THUMB_TIP, :]) ** 2).sum(-1))
        v = VELOCITY_SCALE
        m[..., 0:2] = v * (cur[..., INDEX_TIP, :] - before[..., INDEX_TIP, :])
        m[..., 2:4] = v * (cur[..., WRIST, :] - before[..., WRIST, :])
        m[..., 4:6] = v * (cur.mean(-2) - before.mean(-2))
        m[..., 6] = 10.0 * np.log(np.maximum(size, 1e-6) / np.maximum(psize, 1e-6))
        m[..., 9] = 10.0 * (spread - pspread)
        m[..., 10] = 1.0
        m[..., :10] = np.clip(m[..., :10], -10.0, 10.0)  # a tracker jump is not a gesture
    return out.astype(np.float32)


def _frame_features(cur: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
    """:func:`motion_features` of one frame [21, 2] (same numbers, ~4x faster)."""
    rel = cur - cur[0]
    size = max(float(np.sqrt((rel * rel).sum(1).max())), 1e-9)
    out = np.zeros((21, 3), np.float64)
    out[:, :2] = rel / size
    dx, dy = out[INDEX_TIP, :2] - out[THUMB_TIP, :2]
    spread = (dx * dx + dy * dy) ** 0.5
    m = out[:, 2]
    m[7], m[8] = 4.0 * size, spread
    if prev is not None:
        prel = prev - prev[0]
        psize = max(float(np.sqrt((prel * prel).sum(1).max())), 1e-9)
        pdx, pdy = (prel[INDEX_TIP] - prel[THUMB_TIP]) / psize
        v = VELOCITY_SCALE
        m[0:2] = v * (cur[INDEX_TIP] - prev[INDEX_TIP])
        m[2:4] = v * (cur[WRIST] - prev[WRIST])
        m[4:6] = v * (cur.mean(0) - prev.mean(0))
        m[6] = 10.0 * np.log(max(size, 1e-6) / max(psize, 1e-6))
        m[9] = 10.0 * (spread - (pdx * pdx + pdy * pdy) ** 0.5)
        m[10] = 1.0
        np.clip(m[:10], -10.0, 10.0, out=m[:10])
    return out.astype(np.float32)


def sequence_features(view: np.ndarray, first_has_prev: bool = False) -> np.ndarray:
    """A sequence [T, 21, 2] (or batch [B, T, 21, 2]) -> features [.., T, 21, 3], each frame with the one
    before it; frame 0 has none (unless ``first_has_prev``, where frame 0 is itself a context frame
    and the result has T - 1 frames)."""
    v = np.asarray(view, np.float64)
    if first_has_prev:
        return motion_features(v[..., 1:, :, :], v[..., :-1, :, :])
    first = motion_features(v[..., :1, :, :])
    if v.shape[-3] == 1:
        return first
    rest = motion_features(v[..., 1:, :, :], v[..., :-1, :, :])
    return np.concatenate([first, rest], axis=-3)
