"""Landmark data as the engine's Dataset: where the sets come from, windows or streams, features.

The format, its files and its readers live beside this module, one job each:
:mod:`rnn_jax.data.landmark_files` (``LandmarkSet``, .npz save/load),
:mod:`rnn_jax.data.splits` (the one person-split rule), :mod:`rnn_jax.data.landmark_windows`
(video frames -> windows), :mod:`rnn_jax.data.streams` (photos -> stream windows),
:mod:`rnn_jax.data.hagrid.prepare` (HaGRID, every layout) and
:mod:`rnn_jax.data.landmark_synthetic` (the built-in synthetic hands); import their names from there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnn_jax.data.hagrid.layout import looks_like_hagrid
from rnn_jax.data.hagrid.prepare import hagrid_landmark_sets
from rnn_jax.data.landmark_files import (
    LandmarkSet,
    find_split_files,
    load_landmarks,
)
from rnn_jax.data.landmark_synthetic import builtin_landmarks
from rnn_jax.data.landmark_windows import make_windows
from rnn_jax.data.splits import split_by_person
from rnn_jax.data.streams import StreamLayout, make_streams
from rnn_jax.data.types import Dataset, Split
from rnn_jax.errors import DataError
from rnn_jax.hands.features import FeatureSpec, augment_landmarks


class LandmarkTrainView:
    """Training-time landmark augmentation (replaces the pixel augmentation of the pipeline)."""

    augments = True  # rnn_jax.data.pipeline: call augment() instead of the image augmentation

    def augment(self, features: np.ndarray, rng: np.random.Generator, level: str, flip: bool) -> np.ndarray:
        return augment_landmarks(features, rng, level, mirror=flip)

    def random(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return images

    def clean(self, images: np.ndarray) -> np.ndarray:
        return images


def load_landmark_sets(path: str | Path | None, seed: int = 0) -> tuple[str, dict[str, LandmarkSet]]:
    """(name, splits) from a .npz file (split by person), a folder of train/val(/test).npz, a
    HaGRID root (annotations only), or None (the built-in synthetic set)."""
    if path is None:
        data = builtin_landmarks(seed=0)
        train, val = split_by_person(data, 0.25, seed)
        return "builtin-landmarks", {"train": train, "val": val}
    p = Path(path).expanduser()
    if p.is_file():
        train, val = split_by_person(load_landmarks(p), 0.2, seed)
        return p.stem, {"train": train, "val": val}
    if not p.exists():
        raise DataError(f"landmark data {p} does not exist (give a .npz file, a folder with train.npz and "
                        "val.npz, or a HaGRID root with annotations)")
    files = find_split_files(p)
    if files:
        if "train" not in files:
            raise DataError(f"{p} has {', '.join(f.name for f in files.values())} but no train.npz")
        sets = {s: load_landmarks(f) for s, f in files.items()}
        if "val" not in sets:
            sets["train"], sets["val"] = split_by_person(sets["train"], 0.2, seed)
        names = sets["train"].class_names
        for s, d in sets.items():
            if d.class_names != names:
                raise DataError(f"{files.get(s, p)}: class_names {list(d.class_names)} differ from train.npz's "
                                f"{list(names)}")
        return p.name, sets
    if looks_like_hagrid(p):
        return f"hagrid-landmarks:{p.name}", hagrid_landmark_sets(p, seed=seed)
    raise DataError(f"{p} holds no train.npz/val.npz and no HaGRID annotations")


def landmark_dataset(path: str | Path | None, seed: int = 0, mirror_left: bool = True,
                     window: int = 0, streams: StreamLayout | None = None) -> Dataset:
    """The engine's Dataset for landmark data: features [N, T, 21, 3] as 'images'.

    ``window`` > 0 turns video frames into windows of that many consecutive frames
    (:func:`make_windows`): recurrent models then train by back-propagation through time.
    ``streams`` (a :class:`rnn_jax.data.streams.StreamLayout`) turns photos into stream windows
    (held photos after another class's, loss on the frames the layout names) instead."""
    name, sets = load_landmark_sets(path, seed)
    if window and streams is not None:
        raise DataError("--window (video windows) and --streams (photos played as a stream) exclude each other")
    if window:
        sets = {s: make_windows(d, window) for s, d in sets.items()}
    if streams is not None:
        sets = {s: make_streams(d, streams, seed=seed * 7 + i, mirror_left=mirror_left)
                for i, (s, d) in enumerate(sets.items())}
    train = sets["train"]
    use_z = train.coords == "pixels" and bool(np.any(train.landmarks[..., 2] != 0))
    spec = FeatureSpec(mirror_left=mirror_left, use_z=use_z)
    shapes = {s: d.features(spec).shape[1:] for s, d in sets.items()}
    if len(set(shapes.values())) != 1:
        raise DataError(f"landmark splits differ in shape: {shapes}; every split must hold frames or "
                        "sequences of one length")
    splits = {s: Split(d.features(spec), d.labels.astype(np.int32)) for s, d in sets.items()}
    overlap = set(sets["train"].person_ids.tolist()) & set(sets["val"].person_ids.tolist())
    notes = {"landmarks": {"features": spec.to_dict(), "coords": train.coords,
                           "sequence_length": int(shapes["train"][0]),
                           "people": {s: int(len(np.unique(d.person_ids))) for s, d in sets.items()},
                           "people_in_train_and_val": len(overlap)}}
    for s, d in sets.items():
        if d.notes:
            notes["landmarks"][f"{s}_notes"] = d.notes
    return Dataset(name, train.class_names, splits["train"], splits["val"], splits.get("test"),
                   crop_mode="landmarks", notes=notes, train_view=LandmarkTrainView())
