"""Training streams: photos held as a video, so a stateful model's state is trained the way it is used.

Why: live, a stateful model (the TRM) carries its state from frame to frame, so the first
frames of a gesture arrive with a state left by the previous, different gesture. Trained only
from a zero state on single photos, the model never saw such a state (``tools/live_accuracy.py``
measured trm small 1.5 points below offline on Sign Language Digits val). A stream window
plays photos like that check does, each photo held ``hold`` frames:

    [target x lead] [previous photo x hold] [target x hold]
     from zero        a different class       loss on offsets settle .. hold - 1

and the loss falls on the target's first ``lead`` frames (the zero state: offline and a hand
that just appeared) and on every frame of its second showing after ``settle`` frames (the
carried state, as live). Truncated back-propagation through time: the window starts from zero
and gradients flow through all its frames. Per-frame jitter comes from the landmark
augmentation (each frame gets its own noise); the frames of a held photo are otherwise equal,
as a held photo's are.

The previous photo is of another class (and, where there are several, from any person); a
left hand before a right target is mirrored so the window's one handedness code holds for all
its frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_jax.data.landmark_files import LandmarkSet
from rnn_jax.errors import DataError
from rnn_jax.hands.features import LEFT


@dataclass(frozen=True)
class StreamLayout:
    """Where the frames of a stream window come from and which of them carry a loss."""

    # 5 frames held, loss from the 3rd: 11-frame windows train the carried state as well as the
    # 31-frame ones (hold 15, settle 3) did at 0.38x the training CPU (SLD, trm small, 3 seeds:
    # docs/landmarks.md); a state left by 5 frames of another photo is what 15 leave (the gate
    # mixes each frame in), and live gives a gesture more than 2 frames to take over
    hold: int = 5
    settle: int = 2
    lead: int = 1

    def __post_init__(self) -> None:
        if self.hold < 1:
            raise DataError(f"stream hold must be >= 1 frame, got {self.hold}")
        if not 0 <= self.settle < self.hold:
            raise DataError(f"stream settle must be in [0, hold), got {self.settle} (hold {self.hold})")
        if self.lead < 1:
            raise DataError(f"stream lead must be >= 1 frame, got {self.lead}")

    @property
    def length(self) -> int:
        return self.lead + 2 * self.hold

    @property
    def loss_frames(self) -> tuple[int, ...]:
        """Frame indices whose outputs get the target's loss (the last one is the window's answer)."""
        second = self.lead + self.hold
        return tuple(range(self.lead)) + tuple(range(second + self.settle, self.length))

    def to_dict(self) -> dict:
        return {"hold": self.hold, "settle": self.settle, "lead": self.lead, "length": self.length,
                "loss_frames": list(self.loss_frames)}


def make_streams(data: LandmarkSet, layout: StreamLayout = StreamLayout(), seed: int = 0, per_example: int = 1,
                 mirror_left: bool = True) -> LandmarkSet:
    """Photos (or frames) -> stream windows [N * per_example, layout.length, 21, 3].

    Each example is the target once per ``per_example``, each time after a randomly drawn
    photo of another class (seeded: the same windows for the same seed)."""
    if data.is_sequence:
        raise DataError("streams are made from single photos or frames; the data already holds sequences")
    if per_example < 1:
        raise DataError(f"streams per example must be >= 1, got {per_example}")
    labels = np.asarray(data.labels)
    if len(np.unique(labels)) < 2:
        raise DataError("streams need at least 2 classes (the previous photo is of another class)")
    rng = np.random.default_rng(seed)
    n = len(data)
    target = np.tile(np.arange(n), per_example)
    # a previous photo of another class: draw among all photos, redraw the same-class ones
    prev = rng.integers(0, n, len(target))
    same = labels[prev] == labels[target]
    while same.any():
        prev[same] = rng.integers(0, n, int(same.sum()))
        same = labels[prev] == labels[target]
    lm = data.landmarks.astype(np.float32)
    before = lm[prev].copy()
    if mirror_left:
        flip = (data.handedness[prev] == LEFT) != (data.handedness[target] == LEFT)
        before[flip, :, 0] = -before[flip, :, 0]  # the feature rule is wrist-relative: -x mirrors the hand
    h, lead = layout.hold, layout.lead
    windows = np.concatenate([np.repeat(lm[target][:, None], lead, 1), np.repeat(before[:, None], h, 1),
                              np.repeat(lm[target][:, None], h, 1)], axis=1)
    frame_index = np.broadcast_to(np.arange(layout.length, dtype=np.int32), (len(target), layout.length)).copy()
    notes = {**data.notes, "streams": {**layout.to_dict(), "seed": seed, "per_example": per_example}}
    return LandmarkSet(windows, labels[target], data.class_names, data.person_ids[target], data.handedness[target],
                       frame_index, None if data.sources is None else data.sources[target], data.coords, notes)
