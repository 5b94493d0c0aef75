"""Pure-numpy geometry of the hand finder: SSD anchors, palm and face decoding, weighted NMS, rotated crops.

Facts about the palm model (from MediaPipe's published model card and graph settings):
192x192 letterboxed input, 2,016 anchors (a 24x24 grid with 2 anchors per cell at stride 8,
then a 12x12 grid with 6 per cell at stride 16), each regressing a box (centre offset and
size, in input pixels) and 7 palm keypoints (0 = wrist, 2 = middle-finger knuckle).
Everything here is in frame pixels unless a name says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

PALM_SCALE = 2.6  # hand square side / palm box's longer side
PALM_SHIFT = -0.5  # move the square this many palm-box heights towards the fingers
TRACK_SCALE = 2.0  # square side / landmark extent when tracking from the last frame
TRACK_SHIFT = -0.1
WRIST, MIDDLE_KNUCKLE = 0, 2  # palm keypoints
LM_WRIST, LM_INDEX_MCP, LM_MIDDLE_MCP, LM_RING_MCP = 0, 5, 9, 13  # hand landmarks
# Joints that move little with the gesture (wrist, thumb base, each finger's first two joints):
# the tracking square is sized from these, so it neither grows with outstretched fingers
# nor drifts frame after frame on a still hand.
LM_PALM = (0, 1, 2, 5, 6, 9, 10, 13, 14, 17, 18)


@dataclass(frozen=True)
class Rect:
    """A rotated square in frame pixels: centre, side, and rotation (radians, fingers up = 0)."""

    cx: float
    cy: float
    side: float
    angle: float

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """The square's local x and y axes (unit vectors) in the frame."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.array([c, s]), np.array([-s, c])

    def to_frame(self, uv: np.ndarray) -> np.ndarray:
        """Points in the square's unit coordinates (0..1, 0..1) -> frame pixels."""
        ax, ay = self.axes()
        local = (np.asarray(uv, np.float64)[..., :2] - 0.5) * self.side
        return np.array([self.cx, self.cy]) + local[..., :1] * ax + local[..., 1:2] * ay

    def corners(self) -> np.ndarray:
        return self.to_frame(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]))


def ssd_anchors(layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Anchor centres in 0..1 input coordinates, in a MediaPipe SSD model's output order:
    per layer (grid side, anchors per cell), row by row, each cell's anchors together."""
    parts = []
    for grid, per_cell in layers:
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], -1).reshape(-1, 2)
        parts.append(np.repeat(centres, per_cell, axis=0))
    anchors = np.concatenate(parts).astype(np.float32)
    anchors.setflags(write=False)
    return anchors


_PALM_ANCHORS = ssd_anchors(((24, 2), (12, 6)))  # 192 px input: 2,016 anchors
_FACE_ANCHORS = ssd_anchors(((16, 2), (8, 6)))  # the short-range face detector's 128 px input: 896


def palm_anchors() -> np.ndarray:
    """(2016, 2) anchor centres of the palm detector."""
    return _PALM_ANCHORS


def face_anchors() -> np.ndarray:
    """(896, 2) anchor centres of the short-range face detector."""
    return _FACE_ANCHORS


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the square model input (to map outputs back)."""

    scale: float  # input pixels per frame pixel
    pad_x: float
    pad_y: float
    size: int

    def to_frame(self, xy_unit: np.ndarray) -> np.ndarray:
        """0..1 input coordinates -> frame pixels (any leading shape, last axis x, y)."""
        xy = np.asarray(xy_unit, np.float64) * self.size
        return (xy - np.array([self.pad_x, self.pad_y])) / self.scale


def letterbox_rgb(frame_rgb: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit the frame into ``size x size`` keeping its aspect (black bars), as the palm model wants."""
    h, w = frame_rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame_rgb, (nw, nh), interpolation=interp)
    out = np.zeros((size, size, 3), np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    out[py : py + nh, px : px + nw] = resized
    return out, Letterbox(scale, px, py, size)


@dataclass(frozen=True)
class Palm:
    """One palm detection in frame pixels."""

    score: float
    box: np.ndarray  # (cx, cy, w, h)
    keypoints: np.ndarray  # (7, 2)
    step: tuple[float, float] = (0.0, 0.0)  # its picture's move per frame since it was searched (a lagged search)


def decode_ssd(raw: np.ndarray, logits: np.ndarray, box: Letterbox, anchors: np.ndarray, keypoints: int,
               min_score: float = 0.5) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Raw SSD outputs [A, 4 + 2K], [A] -> (score, box cxcywh, keypoints Kx2) in frame pixels."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -100, 100)))
    keep = np.flatnonzero(scores >= min_score)
    if keep.size == 0:
        return []
    centres_unit = anchors[keep].astype(np.float64)
    r = raw[keep].astype(np.float64) / box.size
    centres = box.to_frame(centres_unit + r[:, 0:2])
    sizes = r[:, 2:4] * box.size / box.scale
    points = box.to_frame(centres_unit[:, None, :] + r[:, 4 : 4 + 2 * keypoints].reshape(-1, keypoints, 2))
    return [(float(scores[k]), np.concatenate([centres[i], sizes[i]]), points[i]) for i, k in enumerate(keep)]


def decode_palms(raw: np.ndarray, logits: np.ndarray, box: Letterbox,
                 min_score: float = 0.5) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Palm detector outputs [2016, 18], [2016] -> (score, box cxcywh, keypoints 7x2) in frame pixels."""
    return decode_ssd(raw, logits, box, _PALM_ANCHORS, 7, min_score)


def decode_faces(raw: np.ndarray, logits: np.ndarray, box: Letterbox,
                 min_score: float = 0.5) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Face detector outputs [896, 16], [896] -> (score, box cxcywh, keypoints 6x2) in frame pixels."""
    return decode_ssd(raw, logits, box, _FACE_ANCHORS, 6, min_score)


def overlap_fraction(inner: tuple[float, float, float, float], outer_cxcywh: np.ndarray) -> float:
    """Share of box ``inner`` (x, y, w, h) that lies inside box ``outer`` (cx, cy, w, h)."""
    x, y, w, h = inner
    cx, cy, ow, oh = (float(v) for v in outer_cxcywh)
    iw = max(0.0, min(x + w, cx + ow / 2) - max(x, cx - ow / 2))
    ih = max(0.0, min(y + h, cy + oh / 2) - max(y, cy - oh / 2))
    return iw * ih / max(w * h, 1e-9)


def iou_cxcywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box ``a`` with boxes ``b`` [N, 4] (centre x, centre y, width, height)."""
    a0, a1 = a[:2] - a[2:] / 2, a[:2] + a[2:] / 2
    b0, b1 = b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2
    inter = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None).prod(axis=1)
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def weighted_nms(candidates: list[tuple[float, np.ndarray, np.ndarray]],
                 iou_threshold: float = 0.3, max_out: int | None = None) -> list[Palm]:
    """Merge overlapping detections: each cluster's box and keypoints are score-weighted means.

    Averaging (instead of keeping only the best box) steadies the box from frame to frame,
    which is what the crop, and so the classifier, sees.
    """
    if not candidates:
        return []
    order = sorted(range(len(candidates)), key=lambda i: -candidates[i][0])
    scores = np.array([candidates[i][0] for i in order])
    boxes = np.stack([candidates[i][1] for i in order])
    kps = np.stack([candidates[i][2] for i in order])
    alive = np.ones(len(order), bool)
    palms: list[Palm] = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        members = alive & (iou_cxcywh(boxes[i], boxes) > iou_threshold)
        members[i] = True
        weights = scores[members] / scores[members].sum()
        palms.append(Palm(float(scores[i]), (boxes[members] * weights[:, None]).sum(0),
                          (kps[members] * weights[:, None, None]).sum(0)))
        alive &= ~members
        if max_out is not None and len(palms) >= max_out:
            break
    return palms


def _angle(p0: np.ndarray, p1: np.ndarray) -> float:
    """Rotation that makes the direction p0 -> p1 point straight up, in (-pi, pi]."""
    angle = math.pi / 2 - math.atan2(-(p1[1] - p0[1]), p1[0] - p0[0])
    return math.atan2(math.sin(angle), math.cos(angle))


def rect_from_palm(palm: Palm) -> Rect:
    """The square the landmark model sees for a palm: rotated wrist -> middle knuckle upright,
    centre moved half a palm-box towards the fingers, side 2.6x the box's longer side."""
    angle = _angle(palm.keypoints[WRIST], palm.keypoints[MIDDLE_KNUCKLE])
    cx, cy, w, h = palm.box
    rect = Rect(cx, cy, 1.0, angle)
    _, ay = rect.axes()
    centre = np.array([cx, cy]) + PALM_SHIFT * h * ay
    return Rect(float(centre[0]), float(centre[1]), float(max(w, h) * PALM_SCALE), angle)


def rect_from_landmarks(landmarks: np.ndarray) -> Rect:
    """The next frame's square from this frame's 21 landmarks (tracking, no palm model).

    Rotation: wrist -> a knuckle point (middle knuckle averaged with the index/ring mean,
    steadier than one joint). Extent: the bounding box of the palm joints (:data:`LM_PALM`)
    in the rotated frame; with all 21 points the square grew on every frame until the hand
    was lost (measured on still photos).
    """
    pts = np.asarray(landmarks, np.float64)[:, :2]
    knuckle = (pts[LM_MIDDLE_MCP] + (pts[LM_INDEX_MCP] + pts[LM_RING_MCP]) / 2) / 2
    angle = _angle(pts[LM_WRIST], knuckle)
    rect = Rect(0.0, 0.0, 1.0, angle)
    ax, ay = rect.axes()
    palm = pts[list(LM_PALM)]
    local = np.stack([palm @ ax, palm @ ay], -1)
    lo, hi = local.min(0), local.max(0)
    mid, size = (lo + hi) / 2, hi - lo
    centre = mid[0] * ax + mid[1] * ay + TRACK_SHIFT * size[1] * ay
    return Rect(float(centre[0]), float(centre[1]), float(max(size) * TRACK_SCALE), angle)


def warp_square(frame: np.ndarray, rect: Rect, size: int) -> np.ndarray:
    """Cut the rotated square out of the frame as an upright ``size x size`` image (black outside)."""
    src = rect.to_frame(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])).astype(np.float32)
    dst = np.array([[0, 0], [size, 0], [0, size]], np.float32)
    matrix = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
