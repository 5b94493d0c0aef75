"""Video frames -> windows of consecutive frames, so recurrent models train by back-propagation through time."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from rnn_jax.data.landmark_files import LandmarkSet
from rnn_jax.errors import DataError


def make_windows(data: LandmarkSet, length: int, stride: int | None = None, max_gap: int = 2) -> LandmarkSet:
    """Frames -> overlapping windows [N, length, 21, 3] of consecutive video frames, for
    training recurrent models by back-propagation through time.

    Frames are grouped by (source, person, label) and ordered by ``frame_index``; a window never
    spans a gap of more than ``max_gap`` frames (a hand lost for longer starts a new run).
    Each window takes the label, person and handedness of its frames and keeps their indices.
    """
    if length < 1:
        raise DataError(f"window length must be >= 1, got {length}")
    if data.is_sequence:
        raise DataError("the data already holds sequences; windows are made from frames")
    if np.any(data.frame_index < 0):
        raise DataError("windows need frames from videos (frame_index >= 0); photos have frame_index -1")
    stride = stride or max(1, length // 2)
    sources = data.sources if data.sources is not None else np.full(len(data), "")
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i in range(len(data)):
        groups[(str(sources[i]), str(data.person_ids[i]), int(data.labels[i]))].append(i)
    picks: list[np.ndarray] = []
    for idx in groups.values():
        idx = np.asarray(sorted(idx, key=lambda i: data.frame_index[i]))
        breaks = np.flatnonzero(np.diff(data.frame_index[idx]) > max_gap) + 1
        for run in np.split(idx, breaks):
            picks += [run[s:s + length] for s in range(0, len(run) - length + 1, stride)]
    if not picks:
        raise DataError(f"no run of {length} consecutive frames (gaps <= {max_gap}) in the data; use a "
                        "shorter --window")
    w = np.stack(picks)
    first = w[:, 0]
    return LandmarkSet(data.landmarks[w], data.labels[first], data.class_names, data.person_ids[first],
                       data.handedness[first], data.frame_index[w],
                       None if data.sources is None else data.sources[first], data.coords,
                       {**data.notes, "windows": {"length": length, "stride": stride, "max_gap": max_gap}})
