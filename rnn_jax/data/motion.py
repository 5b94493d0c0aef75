"""Dynamic-gesture data: sequences composed from real people's hands, and real fingertip recordings (numpy only).

What is real and what is composed (docs/motion.md has the whole story):

- **Composed from real hands** (:mod:`rnn_jax.data.motion_compose`): unit poses of real people's
  hands (the HaGRID sample's landmarks, all 18 gestures and ``no_gesture``; plus the static hands
  of ``hand-keypoints/keypoint.csv``) moved along sampled paths in continuous time and sampled
  at a frame rate drawn per window (10-60 frames/s); pairs of real hands for two-hand zoom.
- **Real trajectories** (``point_history.csv`` of ``hand-keypoints``): index-fingertip paths of a
  webcam, stitched back into recordings (a new one wherever a row is not the previous row shifted
  by one frame): Stop -> ``still``, Clockwise -> ``circle_cw``, Counter Clockwise -> ``circle_ccw``;
  Move -> ``swipe_*`` only where the window's net motion is long, straight and along one axis (a
  derived label). A real "Pointer" hand is placed with its index tip on the path. The recording's
  rate is not given: taken as 30 frames/s (every second frame = 15 frames/s).

Split. HaGRID: the hands of its **train** people compose the training windows; its **val** people
(117) are cut in two by person (alternate ids in sorted order): one half composes the validation
windows, the other the **test** windows (so what is reported was not used to choose anything).
``point_history.csv``: per class, in file order, recordings holding the first 65% of the rows
train, the next 10% validate, the last 25% test (it is one or a few people: source-disjoint,
not person-disjoint); ``keypoint.csv``'s last 25% of each class's rows are held out.

Coordinates: the user's view (mirrored camera), units of the frame's short side
(:mod:`rnn_jax.hands.motion_features`); frame times in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn_jax.data.motion_compose import HandBank, compose_windows, place, unit_poses
from rnn_jax.errors import DataError
from rnn_jax.hands.motion_features import MOTION_CLASSES, sequence_features

WINDOW = 24  # frames the model sees (the window model's buffer: 0.8 s at 30 frames/s, 1.6 s at 15)
FRAME_SIZE = (960, 540)  # point_history.csv was recorded at this size (x / 960, y / 540)
ASPECT = FRAME_SIZE[0] / FRAME_SIZE[1]
RECORDING_FPS = 30.0  # point_history.csv's rate is not documented: taken as a webcam's 30 frames/s
CLASS_INDEX = {name: i for i, name in enumerate(MOTION_CLASSES)}
REAL_CLASSES = {0: "still", 1: "circle_cw", 2: "circle_ccw", 3: "move"}
SPLIT_FRACTIONS = (0.65, 0.10, 0.25)  # train / val / test of each class's recordings, in file order
TEST_FPS = (15.0, 30.0)  # the test windows are sampled at each of these rates


@dataclass
class MotionSet:
    """Windows in the user's view: the hand [N, T + 1, 21, 2] (frame 0 = the frame before the
    window; all zeros where the hand is absent), the other hand (same shape, zeros = none), frame
    times [N, T + 1] (s), labels; ``origin`` per window ("real", "composed"), ``fps`` its rate."""

    views: np.ndarray
    labels: np.ndarray
    origin: np.ndarray
    partner: np.ndarray | None = None
    times: np.ndarray | None = None
    fps: np.ndarray | None = None
    notes: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def features(self) -> np.ndarray:
        """Model input [N, T, 21, 3] (:func:`rnn_jax.hands.motion_features.sequence_features`); frames
        where the hand is absent stay all-zero, the first frame after them has no previous frame."""
        return sequence_features(self.views, self.times, self.partner, first_has_prev=True)

    def filled(self) -> MotionSet:
        """The same set with ``partner``, ``times`` and ``fps`` filled in (no partner, 30 frames/s)."""
        n, f = self.views.shape[:2]
        return MotionSet(self.views, self.labels, self.origin,
                         np.zeros_like(self.views) if self.partner is None else self.partner,
                         np.broadcast_to(np.arange(f) / 30.0, (n, f)) if self.times is None else self.times,
                         np.full(n, 30.0) if self.fps is None else self.fps, self.notes)

    def where(self, mask: np.ndarray) -> MotionSet:
        s = self.filled()
        return MotionSet(s.views[mask], s.labels[mask], s.origin[mask], s.partner[mask], s.times[mask],
                         s.fps[mask])

    @staticmethod
    def concat(sets: list[MotionSet]) -> MotionSet:
        sets = [s.filled() for s in sets]
        return MotionSet(*(np.concatenate([getattr(s, k) for s in sets])
                           for k in ("views", "labels", "origin", "partner", "times", "fps")))


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
    """``keypoint.csv`` -> real static hands as unit poses [N, 21, 2] (wrist at 0, size 1, user's view)
    and classes (0 open, 1 close, 2 pointer)."""
    data = _read_csv(Path(folder) / "keypoint.csv", 43)
    return unit_poses(data[:, 1:].reshape(-1, 21, 2), mirror_x=False), data[:, 0].astype(int)


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
                 pointers: np.ndarray, seed: int, window: int = WINDOW, stride: int = 2,
                 fps: float = RECORDING_FPS) -> MotionSet:
    """Windows of ``window + 1`` frames cut from the real recordings of one split (every
    ``RECORDING_FPS / fps``-th frame), each with a real Pointer hand (unit poses) on the fingertip path."""
    rng = np.random.default_rng(seed)
    step = max(1, int(round(RECORDING_FPS / fps)))
    views, labels = [], []
    for k, (real, path, _) in enumerate(segments):
        if split_of[k] != split:
            continue
        for s in range(0, len(path) - window * step, stride * step):
            piece = path[s:s + window * step + 1:step]
            name = REAL_CLASSES[real]
            if name == "move":
                name = swipe_label(piece[1:])
                if name is None:
                    continue
            anchor = piece + np.array([rng.uniform(0.5, ASPECT - 0.5), rng.uniform(0.35, 0.65)]) - piece.mean(0)
            view = place(pointers[rng.integers(len(pointers))], anchor, rng.uniform(0.15, 0.4),
                         rng.normal(0, 0.2), anchor_point=8)
            views.append(view + rng.normal(0, 0.001, view.shape))
            labels.append(CLASS_INDEX[name])
    n = len(labels)
    times = np.broadcast_to((np.arange(window + 1) - window) * step / RECORDING_FPS, (n, window + 1))
    if not views:
        return MotionSet(np.zeros((0, window + 1, 21, 2)), np.zeros(0, np.int32), np.zeros(0, "U8"))
    return MotionSet(np.stack(views), np.array(labels, np.int32), np.array(["real"] * n), None,
                     np.array(times), np.full(n, RECORDING_FPS / step))


def composed_set(bank: HandBank, per_class: int, seed: int, window: int = WINDOW,
                 fps: float | None = None) -> MotionSet:
    """``per_class`` composed windows of every class (``fps`` None: drawn per window, 10-60)."""
    hands, partners, times, labels = compose_windows(bank, per_class, seed, window + 1, fps)
    rates = 1.0 / np.maximum(np.median(np.diff(times, axis=1), 1), 1e-6)
    return MotionSet(hands, labels, np.array(["composed"] * len(labels)), partners, times,
                     np.full(len(labels), fps) if fps is not None else rates)


def people_halves(person_ids: np.ndarray) -> np.ndarray:
    """0 / 1 per hand: its person's place among the sorted distinct ids, alternately (a person is
    never in both halves)."""
    people = np.unique(np.asarray(person_ids).astype(str))
    half = {p: i % 2 for i, p in enumerate(people)}
    return np.array([half[p] for p in np.asarray(person_ids).astype(str)], np.int8)


def hagrid_banks(root: str | Path) -> tuple[HandBank, HandBank, HandBank, dict]:
    """HaGRID sample -> hand banks (train people; val people half 0; val people half 1) and counts."""
    from rnn_jax.data.hagrid.prepare import hagrid_landmark_sets

    sets = hagrid_landmark_sets(root, progress=False)
    train, val = sets["train"], sets["val"]
    names = np.asarray(train.class_names)
    half = people_halves(val.person_ids)
    banks = [HandBank.from_named(unit_poses(train.landmarks), names[train.labels])]
    for h in (0, 1):
        pick = half == h
        banks.append(HandBank.from_named(unit_poses(val.landmarks[pick]), names[val.labels[pick]]))
    notes = {"hagrid": str(root), "hands": [len(b.poses) for b in banks],
             "people": [int(len(np.unique(train.person_ids)))] + [int(len(np.unique(val.person_ids[half == h])))
                                                                 for h in (0, 1)],
             "L_hands": [int(len(b.groups["L"])) for b in banks]}
    return banks[0], banks[1], banks[2], notes


def merge_banks(a: HandBank, b: HandBank) -> HandBank:
    off = len(a.poses)
    return HandBank(np.concatenate([a.poses, b.poses]),
                    {g: np.concatenate([a.groups.get(g, np.zeros(0, int)), b.groups.get(g, np.zeros(0, int)) + off])
                     for g in set(a.groups) | set(b.groups)})


def motion_sets(folder: str | Path, per_class: int = 500, seed: int = 0, window: int = WINDOW,
                hagrid: str | Path | None = None) -> dict[str, MotionSet]:
    """train / val / test (each real + composed; see the module docstring); ``seed`` draws the training
    windows only (val and test are fixed, so seeds are compared on the same windows). Test windows are sampled
    at each rate of :data:`TEST_FPS` (``MotionSet.fps`` tells which); without ``hagrid`` the hands
    are ``keypoint.csv``'s only."""
    folder = Path(folder).expanduser()
    segments = load_segments(folder)
    seg_labels = np.array([c for c, _, _ in segments])
    lengths = [len(p) for _, p, _ in segments]
    seg_split = split_blocks(np.repeat(seg_labels, lengths), groups=np.repeat(np.arange(len(segments)), lengths))
    first_frame = np.cumsum([0] + lengths)[:-1]
    split_of = {k: int(seg_split[first_frame[k]]) for k in range(len(segments))}
    hands, hand_class = load_static_hands(folder)
    hand_split = split_blocks(hand_class, (0.75, 0.0, 0.25))
    keypoint_banks = [HandBank.from_keypoints(hands[hand_split == s], hand_class[hand_split == s]) for s in (0, 2)]
    notes: dict = {}
    if hagrid is not None:
        train_bank, val_bank, test_bank, notes = hagrid_banks(hagrid)
        banks = [merge_banks(train_bank, keypoint_banks[0]), val_bank, test_bank]
    else:
        banks = [keypoint_banks[0], keypoint_banks[1], keypoint_banks[1]]
    out = {}
    for split, name in enumerate(("train", "val", "test")):
        held = hand_split == (0 if split == 0 else 2)
        pointers = hands[held & (hand_class == 2)]
        rates = (None,) if split < 2 else TEST_FPS
        parts = []
        base = seed if split == 0 else 0  # held-out windows are the same whatever the training seed
        for r, fps in enumerate(rates):
            real_fps = [RECORDING_FPS, RECORDING_FPS / 2] if fps is None else [fps]
            for i, f in enumerate(real_fps):
                parts.append(real_windows(segments, split_of, split, pointers, base + 100 + 10 * split + i + r,
                                          window, stride=2 if split == 0 else 1, fps=f))
            n = per_class if split == 0 else max(40, per_class // 5)
            parts.append(composed_set(banks[split], n, base * 1000 + 7 + split * 10 + r, window, fps))
        both = MotionSet.concat(parts)
        real = both.origin == "real"
        both.notes = {"real": int(real.sum()), "composed": int((~real).sum()),
                      "real_per_class": {MOTION_CLASSES[c]: int((both.labels[real] == c).sum())
                                         for c in np.unique(both.labels[real])},
                      "recordings": int(sum(1 for k in split_of if split_of[k] == split)),
                      "hands": "HaGRID + keypoint.csv" if hagrid is not None else "keypoint.csv", **notes}
        out[name] = both
    return out
