"""Draw the live display: gesture label, top-k bars, FPS/latency, ROI square, key legend.

Drawing only (no window calls), so it also runs under opencv-python-headless and in tests.
"""

from __future__ import annotations

import cv2
import numpy as np

KEY_LEGEND = "q/Esc quit  m mirror  r reset  s screenshot  space pause  k skeleton"
# The 21 hand landmarks: wrist 0, then 4 joints per finger from thumb (1-4) to little (17-20).
HAND_CONNECTIONS = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10),
                    (10, 11), (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17),
                    (17, 18), (18, 19), (19, 20))

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)
_GREY = (170, 170, 170)
_GREEN = (80, 220, 80)
_YELLOW = (0, 215, 255)
_BLACK = (0, 0, 0)
_CYAN = (255, 220, 0)  # BGR: the motion colour (trails, dynamic gestures)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int],
          thickness: int = 1) -> None:
    """Text with a dark outline, readable on any background."""
    cv2.putText(img, text, org, _FONT, scale, _BLACK, thickness + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, scale, colour, thickness, cv2.LINE_AA)


def _shade(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, alpha: float = 0.55) -> None:
    """Darken a rectangle in place (a panel behind text)."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = (img[y0:y1, x0:x1] * (1.0 - alpha)).astype(np.uint8)


def draw_overlay(
    frame_bgr: np.ndarray,
    *,
    class_names: tuple[str, ...] | list[str],
    probabilities: np.ndarray,
    label: str | None,
    top_label: str,
    confidence: float,
    threshold: float,
    fps: float | None = None,
    latency_ms: float | None = None,
    roi: tuple[int, int, int] | None = None,
    top_k: int = 3,
    mirror: bool = False,
    paused: bool = False,
    note: str = "",
    hands: tuple | None = None,
    skeleton: bool = True,
    banner: str | None = None,
) -> np.ndarray:
    """Return a copy of ``frame_bgr`` with the live display drawn on it.

    ``mirror`` flips the picture (a selfie view) and the ROI with it; the model always
    sees the unflipped frame, like the frames ``rnn_jax.capture`` saves for training.
    ``hands`` (:class:`rnn_jax.live.results.HandResult` items) draws each hand's crop square and
    label, and its 21-landmark skeleton when ``skeleton`` is on; ``()`` means no hand in view.
    Each hand's ``trail`` (the tracked point on its last frames) is drawn as a fading line and its
    active dynamic gesture (``motion``) under its box; ``banner`` (the dynamic gesture that just
    fired) is written large in the middle of the frame.
    """
    img = cv2.flip(frame_bgr, 1) if mirror else frame_bgr.copy()
    if img.ndim == 2 or img.shape[2] == 1:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    s = max(0.4, min(w, h) / 720)  # text scale follows the frame size

    if roi is not None:
        left, top, side = roi
        if mirror:
            left = w - left - side
        colour = _GREEN if label else _WHITE
        cv2.rectangle(img, (left, top), (left + side, top + side), colour, max(1, round(2 * s)))

    if hands is not None:
        _draw_hands(img, hands, skeleton, mirror, s)

    # Header: the active gesture (big) and the current top class (small).
    line = round(34 * s)
    _shade(img, 0, 0, w, round(2.6 * line))
    if label:
        _text(img, label, (10, round(1.2 * line)), 1.1 * s, _GREEN, max(1, round(2 * s)))
    else:
        text = "no gesture" + (" (no hand in view)" if hands is not None and not hands else "")
        _text(img, text, (10, round(1.2 * line)), 1.1 * s, _GREY, max(1, round(2 * s)))
    _text(img, f"top: {top_label} {confidence:.0%} (threshold {threshold:.0%})",
          (10, round(2.2 * line)), 0.55 * s, _WHITE)
    stats = []
    if fps is not None:
        stats.append(f"{fps:.1f} FPS")
    if latency_ms is not None:
        stats.append(f"model {latency_ms:.1f} ms")
    if paused:
        stats.append("PAUSED")
    if note:
        stats.append(note)
    if stats:
        text = "  ".join(stats)
        (tw, _), _ = cv2.getTextSize(text, _FONT, 0.55 * s, 1)
        _text(img, text, (max(10, w - tw - 10), round(1.2 * line)), 0.55 * s, _YELLOW if paused else _WHITE)

    # Top-k probability bars with a tick at the threshold.
    probs = np.asarray(probabilities, dtype=np.float64)
    k = max(1, min(top_k, len(probs)))
    order = np.argsort(-probs)[:k]
    bar_h, gap = round(18 * s), round(6 * s)
    bar_w = max(40, min(w // 3, round(220 * s)))
    y = round(2.6 * line) + gap
    _shade(img, 0, y - gap // 2, bar_w + round(160 * s), y + k * (bar_h + gap))
    for idx in order:
        name = str(class_names[idx])
        p = float(probs[idx])
        x0 = 10
        cv2.rectangle(img, (x0, y), (x0 + bar_w, y + bar_h), _GREY, 1)
        fill = _GREEN if name == label else _WHITE
        cv2.rectangle(img, (x0, y), (x0 + round(bar_w * min(max(p, 0.0), 1.0)), y + bar_h), fill, -1)
        tx = x0 + round(bar_w * threshold)
        cv2.line(img, (tx, y - 2), (tx, y + bar_h + 2), _YELLOW, 1)
        _text(img, f"{name[:18]} {p:.0%}", (x0 + bar_w + 8, y + bar_h - round(4 * s)), 0.5 * s, _WHITE)
        y += bar_h + gap

    if banner:
        scale, thick = 1.4 * s, max(2, round(3 * s))
        (tw, th), _ = cv2.getTextSize(banner, _FONT, scale, thick)
        x, y = max(10, (w - tw) // 2), h // 2 + th // 2
        _shade(img, x - 12, y - th - 12, x + tw + 12, y + 16)
        _text(img, banner, (x, y), scale, _CYAN, thick)

    # One-line key legend at the bottom.
    _shade(img, 0, h - round(26 * s), w, h)
    _text(img, KEY_LEGEND, (10, h - round(8 * s)), 0.5 * s, _WHITE)
    return img


def _draw_hands(img: np.ndarray, hands: tuple, skeleton: bool, mirror: bool, s: float) -> None:
    """Each hand: the square the classifier saw, its label, and (optionally) its skeleton."""
    w = img.shape[1]
    thick = max(1, round(2 * s))

    def px(x: float, y: float) -> tuple[int, int]:
        return (round(w - 1 - x) if mirror else round(x), round(y))

    for rec in hands:
        trail = getattr(rec, "trail", None)
        if trail is not None and len(trail) > 1:
            pts = [px(x, y) for x, y in np.asarray(trail)[:, :2]]
            n = len(pts)
            for k in range(1, n):  # older segments thinner and darker: the motion reads at a glance
                fade = k / (n - 1)
                colour = tuple(round(c * (0.35 + 0.65 * fade)) for c in _CYAN)
                cv2.line(img, pts[k - 1], pts[k], colour, max(1, round(thick * 2 * fade)), cv2.LINE_AA)
        left, top, side = rec.crop
        colour = _GREEN if rec.label else _WHITE
        a, b = px(left, top), px(left + side, top + side)
        cv2.rectangle(img, a, b, colour, thick)
        caption = f"{rec.label or 'no gesture'} {rec.confidence:.0%} ({rec.hand.handedness})"
        _text(img, caption, (min(a[0], b[0]), max(12, top - 6)), 0.5 * s, colour)
        motion = getattr(rec, "motion", None)
        if motion:
            _text(img, f"~ {motion}", (min(a[0], b[0]), min(img.shape[0] - 30, top + side + round(20 * s))),
                  0.6 * s, _CYAN, max(1, round(2 * s)))
        if skeleton:
            pts = [px(x, y) for x, y in rec.hand.landmarks[:, :2]]
            for i, j in HAND_CONNECTIONS:
                cv2.line(img, pts[i], pts[j], _YELLOW, thick, cv2.LINE_AA)
            for p in pts:
                cv2.circle(img, p, thick + 1, _GREEN, -1, cv2.LINE_AA)
