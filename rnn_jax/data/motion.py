"""Dynamic-gesture data: real fingertip trajectories and sequences composed from real hands (numpy only).

What is real and what is composed (docs/motion.md has the whole story):

- **Real trajectories** (``point_history.csv`` of ``hand-keypoints``): 16-frame index-fingertip
  windows from a webcam, one frame apart inside a recording. Consecutive rows are stitched back
  into continuous recordings ("segments": a new one wherever a row is not the previous row shifted
  by one frame). Classes: Stop -> ``still``, Clockwise -> ``circle_cw``, Counter Clockwise ->
  ``circle_ccw``; Move -> ``swipe_*`` only where the window's net motion is long, straight and
  along one axis (a derived label), otherwise left out. The fingertip path is real; the rest of
  the hand is a real static "Pointer" hand of ``keypoint.csv`` placed with its index tip on the
  path (its pose held, with jitter).
- **Composed sequences**: real static hands (``keypoint.csv``: open, close, pointer) moved,
  scaled and rotated along sampled paths (swipes, circles, thumb-index spread for zoom, still,
  drift and pose changes for "no motion gesture") with random speed, jitter, dropped (repeated)
  frames, holds before and after, and windows that start when the hand appears.

Split (source-disjoint; the set is one or a few people, so it cannot be person-disjoint): per
class, the recordings in file order: first 65% train, next 10% val, last 25% test, cut at
segment boundaries (a recording never spans two splits); composed val/test use the static hands
of held-out blocks of ``keypoint.csv`` (last 25% of each class's rows) and their own random seeds.

Coordinates: the user's view (mirrored camera), units of the frame's short side
(:mod:`rnn_jax.hands.motion_features`); both files were recorded in that view (the app mirrors the image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn_jax.errors import DataError
from rnn_jax.hands.motion_features import MOTION_CLASSES, sequence_features

WINDOW = 24  # frames the model sees (the window model's buffer; 0.8 s at 30 FPS)
FRAME_SIZE = (960, 540)  # point_history.csv was recorded at this size (x / 960, y / 540)
ASPECT = FRAME_SIZE[0] / FRAME_SIZE[1]
CLASS_INDEX = {name: i for i, name in enumerate(MOTION_CLASSES)}
REAL_CLASSES = {0: "still", 1: "circle_cw", 2: "circle_ccw", 3: "move"}
SPLIT_FRACTIONS = (0.65, 0.10, 0.25)  # train / val / test of each class's recordings, in file order


@dataclass
class MotionSet:
    """Sequences in the user's view [N, T + 1, 21, 2] (frame 0 = the frame before the window; all
    zeros where the hand had not appeared yet) and labels; ``origin``: "real" or "composed"."""

    views: np.ndarray
    labels: np.ndarray
    origin: np.ndarray
    notes: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def features(self) -> np.ndarray:
        """Model input [N, T, 21, 3] (:func:`rnn_jax.hands.motion_features.sequence_features`); frames where the
        hand is absent stay all-zero, the first frame after them has no previous frame."""
        v = self.views
        present = np.abs(v).sum((-1, -2)) > 0  # [N, T + 1]
        feats = sequence_features(v, first_has_prev=True)  # [N, T, 21, 3]
        cur, prev = present[:, 1:], present[:, :-1]
        fresh = motion_only_pose(feats)  # = the features without a previous frame
        feats = np.where((cur & ~prev)[..., None, None], fresh, feats)
        return np.where(cur[..., None, None], feats, 0.0).astype(np.float32)

    @staticmethod
    def concat(sets: list[MotionSet]) -> MotionSet:
        return MotionSet(np.concatenate([s.views for s in sets]), np.concatenate([s.labels for s in sets]),
                         np.concatenate([s.origin for s in sets]))


def motion_only_pose(feats: np.ndarray) -> np.ndarray:
    """Features as computed without a previous frame (velocities and the flag zero)."""
    out = feats.copy()
    out[..., [0, 1, 2, 3, 4, 5, 6, 9, 10], 2] = 0.0
    return out


# ----------------------------------------------------------------------------- files
def _read_csv(path: Path, width: int) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} not found (hand-keypoints data: ../shared/data/hand-keypoints)")
    try:
        data = np.loadtxt(path, delimiter=",", dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path}: not a numeric CSV ({exc})") from None
    if data.ndim != 2 or data.shape[1] != width:
        raise DataError(f"{path}: expected {width} columns, got {list(data.shape)}")
    return data


def load_segments(folder: str | Path) -> list[tuple[int, np.ndarray, int]]:
    """``point_history.csv`` -> recordings (real class id, fingertip path [L, 2] in the user's view
    units, first row index), stitched from overlapping 16-frame rows."""
    data = _read_csv(Path(folder) / "point_history.csv", 33)
    labels = data[:, 0].astype(int)
    pts = data[:, 1:].reshape(-1, 16, 2) * np.array(FRAME_SIZE) / min(FRAME_SIZE)
    segments, start = [], 0
    for i in range(1, len(pts) + 1):
        cont = i < len(pts) and labels[i] == labels[i - 1] and np.abs(
            (pts[i - 1, 1:] - pts[i - 1, 1]) - (pts[i, :-1] - pts[i, 0])).max() < 1e-3
        if not cont:
            rows = pts[start:i]
            # row r's first point sits at row r-1's second point: chain them into one path
            origin = np.concatenate([[0.0, 0.0] * np.ones((1, 2)), np.cumsum(rows[:-1, 1], 0)])
            path = np.concatenate([origin[0] + rows[0], origin[1:] + rows[1:, -1]]) if len(rows) > 1 else rows[0]
            segments.append((int(labels[start]), path, start))
            start = i
    return segments


def load_static_hands(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``keypoint.csv`` -> real static hands [N, 21, 2] (wrist-relative, user's view) and classes
    (0 open, 1 close, 2 pointer)."""
    data = _read_csv(Path(folder) / "keypoint.csv", 43)
    return data[:, 1:].reshape(-1, 21, 2), data[:, 0].astype(int)


def split_blocks(labels: np.ndarray, fractions=SPLIT_FRACTIONS, groups: np.ndarray | None = None) -> np.ndarray:
    """Per class, in file order: 0 (train), 1 (val), 2 (test) by cumulative share of rows, never
    cutting a group (a recording) in two."""
    split = np.zeros(len(labels), np.int8)
    groups = np.arange(len(labels)) if groups is None else groups
    bounds = np.cumsum(fractions)[:-1]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        share = np.arange(1, len(idx) + 1) / len(idx)
        first_of_group = {}
        for k, i in enumerate(idx):
            first_of_group.setdefault(groups[i], share[k])
        for i in idx:
            split[i] = int(np.searchsorted(bounds, first_of_group[groups[i]], side="left"))
    return split


# ----------------------------------------------------------------------------- hands
def place_hand(pose: np.ndarray, anchor: np.ndarray, size: float, angle: float, anchor_point: int = 0) -> np.ndarray:
    """A unit pose [21, 2] scaled to ``size`` (wrist to farthest landmark), rotated by ``angle``,
    translated so landmark ``anchor_point`` sits at ``anchor`` [T, 2]; -> [T, 21, 2]."""
    rel = pose - pose[0]
    rel = rel / max(np.sqrt((rel ** 2).sum(-1)).max(), 1e-9) * size
    c, s = np.cos(angle), np.sin(angle)
    rel = rel @ np.array([[c, s], [-s, c]])
    return anchor[:, None, :] + (rel - rel[anchor_point])[None]


def pinch(pose: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Thumb and index moved towards the point between their tips: ``amount`` [T] in 0 (as the hand
    is) .. 1 (tips together) -> [T, 21, 2]. Zoom in = the spread opens (amount falls)."""
    t = np.asarray(amount, np.float64)[:, None, None]
    out = np.repeat(pose[None], len(t), 0)
    mid = (pose[4] + pose[8]) / 2
    for joints, weights in (((2, 3, 4), (0.3, 0.6, 1.0)), ((6, 7, 8), (0.3, 0.6, 1.0))):
        for j, w in zip(joints, weights):
            out[:, j] = pose[j] + (mid - pose[j]) * w * t[:, 0]
    return out


def _ease(n: int, rng: np.random.Generator) -> np.ndarray:
    """0..1 over n frames with a random mix of linear and smooth-step speed."""
    u = np.linspace(0, 1, n)
    k = rng.uniform(0, 1)
    return k * u + (1 - k) * u * u * (3 - 2 * u)


@dataclass(frozen=True)
class Composer:
    """Samples windows of one class from real static hands (see the module docstring)."""

    hands: np.ndarray  # [N, 21, 2] real unit poses
    hand_class: np.ndarray  # 0 open, 1 close, 2 pointer
    window: int = WINDOW

    def pose(self, rng: np.random.Generator, kinds: tuple[int, ...] = (0, 1, 2)) -> np.ndarray:
        idx = np.flatnonzero(np.isin(self.hand_class, kinds))
        return self.hands[rng.choice(idx)]

    def compose(self, label: str, rng: np.random.Generator) -> np.ndarray:
        """One window in the user's view [T + 1, 21, 2] whose last frames show ``label``."""
        n = self.window + 1
        size = rng.uniform(0.18, 0.42)
        angle = rng.normal(0, 0.2)
        jitter = rng.uniform(0.0005, 0.004)
        start = np.array([rng.uniform(0.35, ASPECT - 0.35), rng.uniform(0.3, 0.8)])
        if label in ("swipe_left", "swipe_right", "swipe_up", "swipe_down", "circle_cw", "circle_ccw",
                     "zoom_in", "zoom_out"):
            length = int(rng.integers(6, 17)) if label.startswith(("swipe", "zoom")) else int(rng.integers(14, 27))
            # the gesture ends 0..3 frames before the window does, or is 75%+ done at its end
            end = n - 1 - int(rng.integers(0, 4)) if rng.random() < 0.8 else n - 1 + int(rng.integers(1, max(2, length // 4)))
            t0 = end - length
            progress = np.clip((np.arange(n) - t0) / length, 0, 1)
            ease = np.interp(progress, np.linspace(0, 1, length), _ease(length, rng))
            anchor = np.repeat(start[None], n, 0)
            pose = self.pose(rng, (2,) if label.startswith("circle") else (0, 2) if label.startswith("zoom") else (0, 1, 2))
            frames: np.ndarray | None = None
            if label.startswith("swipe"):
                direction = {"swipe_left": np.pi, "swipe_right": 0.0, "swipe_up": -np.pi / 2,
                             "swipe_down": np.pi / 2}[label] + rng.normal(0, 0.15)
                dist = rng.uniform(0.22, 0.7)
                vec = dist * np.array([np.cos(direction), np.sin(direction)])
                bow = rng.normal(0, 0.06) * dist * np.array([-vec[1], vec[0]]) / dist
                anchor = start - vec / 2 + ease[:, None] * vec + np.sin(np.pi * ease)[:, None] * bow
            elif label.startswith("circle"):
                radius = rng.uniform(0.05, 0.18)
                turns = rng.uniform(0.9, 1.6)
                sense = 1.0 if label == "circle_cw" else -1.0  # y down: angle up = clockwise on screen
                phase = rng.uniform(0, 2 * np.pi)
                theta = phase + sense * 2 * np.pi * turns * ease
                anchor = start + radius * np.stack([np.cos(theta), np.sin(theta)], -1)
                squash = rng.uniform(0.7, 1.3)
                anchor[:, 1] = start[1] + (anchor[:, 1] - start[1]) * squash
            else:  # zoom: the thumb-index spread opens (in) or closes (out); the hand nearly still
                a, b = rng.uniform(0.75, 1.0), rng.uniform(0.0, 0.25)
                amount = a + (b - a) * ease if label == "zoom_in" else b + (a - b) * ease
                frames = pinch(pose, amount)
                anchor = start + np.cumsum(rng.normal(0, 0.002, (n, 2)), 0)
            point = 8 if label.startswith("circle") else 0
            if frames is None:
                view = place_hand(pose, anchor, size, angle, point)
            else:
                view = np.stack([place_hand(f, anchor[i:i + 1], size, angle, 0)[0] for i, f in enumerate(frames)])
        elif label == "still":
            anchor = start + np.cumsum(rng.normal(0, 0.0008, (n, 2)), 0)
            view = place_hand(self.pose(rng), anchor, size, angle)
        else:  # no_motion: slow drift, small hesitant moves, pose changes, rotation; or a gesture long gone
            view = self._no_motion(rng, n, start, size, angle)
        view = view + rng.normal(0, jitter * size * 4, view.shape)
        return self._glitches(view, rng)

    def _no_motion(self, rng: np.random.Generator, n: int, start: np.ndarray, size: float, angle: float) -> np.ndarray:
        kind = rng.integers(0, 4)
        if kind == 0:  # slow drift in any direction (well below a swipe's speed)
            vel = rng.normal(0, 1, 2)
            vel = vel / np.linalg.norm(vel) * rng.uniform(0.001, 0.006)
            anchor = start + np.arange(n)[:, None] * vel
            return place_hand(self.pose(rng), anchor, size, angle)
        if kind == 1:  # a small, short move (shorter than a swipe)
            t = np.clip((np.arange(n) - rng.integers(0, n - 6)) / rng.integers(4, 10), 0, 1)
            vec = rng.normal(0, 1, 2)
            vec = vec / np.linalg.norm(vec) * rng.uniform(0.02, 0.09)
            return place_hand(self.pose(rng), start + t[:, None] * vec, size, angle)
        if kind == 2:  # the pose changes (open <-> fist), the hand rotates a little
            a, b = self.pose(rng), self.pose(rng)
            t = np.clip((np.arange(n) - rng.integers(0, n - 4)) / rng.integers(3, 10), 0, 1)
            rot = angle + t * rng.normal(0, 0.3)
            anchor = np.repeat(start[None], n, 0)
            return np.stack([place_hand(a * (1 - s) + b * s, anchor[i:i + 1], size, rot[i])[0]
                             for i, s in enumerate(t)])
        # a gesture that ended 9+ frames ago, then the hand rests (its residue is not a new gesture)
        label = str(rng.choice(["swipe_left", "swipe_right", "swipe_up", "swipe_down", "circle_cw", "circle_ccw"]))
        past = self.compose(label, rng)
        shift = int(rng.integers(9, 16))
        return np.concatenate([past[shift:], np.repeat(past[-1:], shift, 0)])

    def _glitches(self, view: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = view.copy()
        if rng.random() < 0.3:  # dropped frames: the finder repeats the last landmarks
            for i in rng.choice(np.arange(1, len(out)), size=int(rng.integers(1, 4)), replace=False):
                out[i] = out[i - 1]
        if rng.random() < 0.15:  # the hand appeared k frames before the window's end
            k = int(rng.integers(len(out) // 2, len(out)))
            out[: len(out) - k] = 0.0
        return out


# ----------------------------------------------------------------------------- real windows
def swipe_label(path: np.ndarray) -> str | None:
    """A real "Move" window's derived label: long, straight and along one axis, else None."""
    net = path[-1] - path[0]
    dist = float(np.linalg.norm(net))
    length = float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
    if dist < 0.15 or length <= 0 or dist / length < 0.75:
        return None
    angle = np.degrees(np.arctan2(net[1], net[0]))
    for name, centre in (("swipe_right", 0), ("swipe_down", 90), ("swipe_left", 180), ("swipe_up", -90)):
        if abs((angle - centre + 180) % 360 - 180) <= 30:
            return name
    return None


def real_windows(segments: list[tuple[int, np.ndarray, int]], split_of: dict[int, int], split: int,
                 hands: np.ndarray, hand_class: np.ndarray, seed: int, window: int = WINDOW,
                 stride: int = 2) -> MotionSet:
    """Windows of ``window + 1`` frames cut from the real recordings of one split, each with a real
    Pointer hand placed on the fingertip path."""
    rng = np.random.default_rng(seed)
    pointers = hands[hand_class == 2]
    views, labels = [], []
    for k, (real, path, _) in enumerate(segments):
        if split_of[k] != split:
            continue
        for s in range(0, len(path) - window, stride):
            piece = path[s:s + window + 1]
            name = REAL_CLASSES[real]
            if name == "move":
                name = swipe_label(piece[1:])
                if name is None:
                    continue
            anchor = piece + np.array([rng.uniform(0.5, ASPECT - 0.5), rng.uniform(0.35, 0.65)]) - piece.mean(0)
            view = place_hand(pointers[rng.integers(len(pointers))], anchor, rng.uniform(0.18, 0.42),
                              rng.normal(0, 0.2), anchor_point=8)
            views.append(view + rng.normal(0, 0.001, view.shape))
            labels.append(CLASS_INDEX[name])
    if not views:
        return MotionSet(np.zeros((0, window + 1, 21, 2)), np.zeros(0, np.int32), np.zeros(0, "U8"))
    return MotionSet(np.stack(views), np.array(labels, np.int32), np.array(["real"] * len(labels)))


def composed_windows(hands: np.ndarray, hand_class: np.ndarray, per_class: int, seed: int,
                     window: int = WINDOW) -> MotionSet:
    rng = np.random.default_rng(seed)
    composer = Composer(hands, hand_class, window)
    views, labels = [], []
    for name in MOTION_CLASSES:
        for _ in range(per_class):
            views.append(composer.compose(name, rng))
            labels.append(CLASS_INDEX[name])
    return MotionSet(np.stack(views), np.array(labels, np.int32), np.array(["composed"] * len(labels)))


def motion_sets(folder: str | Path, per_class: int = 800, seed: int = 0,
                window: int = WINDOW) -> dict[str, MotionSet]:
    """train / val / test, each real + composed (see the module docstring)."""
    folder = Path(folder).expanduser()
    segments = load_segments(folder)
    seg_labels = np.array([c for c, _, _ in segments])
    seg_split = split_blocks(np.repeat(seg_labels, [len(p) for _, p, _ in segments]),
                             groups=np.repeat(np.arange(len(segments)), [len(p) for _, p, _ in segments]))
    first_frame = np.cumsum([0] + [len(p) for _, p, _ in segments])[:-1]
    split_of = {k: int(seg_split[first_frame[k]]) for k in range(len(segments))}
    hands, hand_class = load_static_hands(folder)
    hand_split = split_blocks(hand_class, (0.75, 0.0, 0.25))
    out = {}
    for split, name in enumerate(("train", "val", "test")):
        pool = hand_split == (0 if split == 0 else 2)
        real = real_windows(segments, split_of, split, hands[pool], hand_class[pool], seed + 100 + split,
                            window, stride=2 if split == 0 else 1)
        n = per_class if split == 0 else max(50, per_class // 4)
        composed = composed_windows(hands[pool], hand_class[pool], n, seed * 1000 + 7 + split, window)
        both = MotionSet.concat([real, composed])
        both.notes = {"real": len(real), "composed": len(composed),
                      "real_per_class": {MOTION_CLASSES[c]: int((real.labels == c).sum())
                                         for c in np.unique(real.labels)},
                      "recordings": int(sum(1 for k in split_of if split_of[k] == split))}
        out[name] = both
    return out
