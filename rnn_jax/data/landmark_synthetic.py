"""The built-in synthetic hands: a demo and test set that needs no download and no hand finder.

Drawn from a small kinematic model (bone lengths per person, pose noise, rotation, size and
place per example), so the landmark family runs end to end on any machine.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from rnn_jax.data.landmark_files import LandmarkSet
from rnn_jax.hands.features import FINGERS, LEFT, NUM_LANDMARKS, RIGHT

BUILTIN_GESTURES = {  # which fingers (thumb, index, middle, ring, little) are extended
    "fist": (0, 0, 0, 0, 0), "one": (0, 1, 0, 0, 0), "peace": (0, 1, 1, 0, 0), "three": (0, 1, 1, 1, 0),
    "four": (0, 1, 1, 1, 1), "palm": (1, 1, 1, 1, 1), "like": (1, 0, 0, 0, 0), "rock": (0, 1, 0, 0, 1),
}


def builtin_landmarks(people: int = 24, per_class: int = 6, seed: int = 0) -> LandmarkSet:
    """Synthetic hands drawn from a small kinematic model: each person has their own bone lengths,
    each example its own pose noise, rotation, size and place. A demo and test set only."""
    rng = np.random.default_rng(seed)
    names = tuple(BUILTIN_GESTURES)
    base_dirs = np.deg2rad([-60.0, -15.0, 0.0, 12.0, 25.0])  # finger directions from the palm (up = -y)
    rows = defaultdict(list)
    for person in range(people):
        bones = rng.uniform(0.8, 1.2, (5, 4)) * np.array([0.35, 0.3, 0.22, 0.18])
        palm = rng.uniform(0.9, 1.1)
        hand = LEFT if person % 4 == 3 else RIGHT
        for label, pattern in enumerate(BUILTIN_GESTURES.values()):
            for shot in range(per_class):  # a person's shots of a gesture count as one short video
                pts = np.zeros((NUM_LANDMARKS, 3))
                for f, chain in enumerate(FINGERS):
                    angle = base_dirs[f] + rng.normal(0, 0.05)
                    bend = (0.15 if pattern[f] else 1.3) + rng.normal(0, 0.1)
                    start = np.array([np.sin(angle) * (0.35 if f else 0.2), -palm * (0.9 if f else 0.3), 0.0])
                    pos, heading = start, angle
                    for j, joint in enumerate(chain):
                        pts[joint] = pos
                        heading += bend * (1 if f else -0.5) * (j > 0)
                        pos = pos + bones[f, j] * np.array([np.sin(heading), -np.cos(heading), 0.05 * j])
                theta = rng.normal(0, 0.25)
                rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
                pts = pts @ rot.T * rng.uniform(60, 160) + np.array([rng.uniform(100, 500), rng.uniform(100, 400), 0])
                pts += rng.normal(0, 1.5, pts.shape)
                if hand == LEFT:
                    pts[:, 0] = 640 - pts[:, 0]
                rows["landmarks"].append(pts)
                rows["label"].append(label)
                rows["person"].append(f"synthetic-{person}")
                rows["hand"].append(hand)
                rows["frame"].append(shot)
                rows["source"].append(f"synthetic-{person}-{label}")
    return LandmarkSet(np.asarray(rows["landmarks"], np.float32), np.asarray(rows["label"], np.int32), names,
                       np.asarray(rows["person"]), np.asarray(rows["hand"], np.int8),
                       np.asarray(rows["frame"], np.int32), np.asarray(rows["source"]), "pixels",
                       {"builtin": True}).validate("built-in landmarks")
