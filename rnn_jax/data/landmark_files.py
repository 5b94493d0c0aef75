"""Landmark data in one format: arrays, labels, person ids, handedness, frame index (.npz).

Why one format: landmarks come from three places (the hand finder on photos and videos,
``tools/extract_landmarks.py``; HaGRID in every layout, by :mod:`rnn_jax.data.hagrid.prepare` (annotated landmarks where given);
a built-in synthetic set for demos and tests) and every model, tool and test reads the same
validated arrays. A file holds one split:

  ``landmarks``   float32 [N, 21, 3] (one hand per photo / frame) or [N, T, 21, 3] (sequences)
  ``labels``      int [N], indices into ``class_names``
  ``class_names`` str [K]
  ``person_ids``  str [N], who made the example (splits never share a person)
  ``handedness``  int [N]: 0 right, 1 left, -1 unknown (:mod:`rnn_jax.hands.features`)
  ``frame_index`` int [N] (frames: index in the source video, -1 for photos) or [N, T]
  ``sources``     str [N] (optional): the photo or video each example came from
  ``coords``      str: "pixels" (x, y in frame pixels, z same scale) or "normalized" (0..1, HaGRID)

The model input is :func:`rnn_jax.hands.features.landmark_features` of these, shaped
[N, T, 21, 3] (T = 1 for photos): a 4-D array, so the image engine (Split, grain pipeline,
fingerprint, driver) carries landmark sets unchanged.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn_jax.atomic import writing
from rnn_jax.errors import DataError
from rnn_jax.hands.features import (
    LEFT,
    NUM_LANDMARKS,
    RIGHT,
    UNKNOWN,
    FeatureSpec,
    landmark_features,
)

SPLITS = ("train", "val", "test")
COORDS = ("pixels", "normalized")


@dataclass
class LandmarkSet:
    """One split of landmark data (see the module docstring for the fields)."""

    landmarks: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    person_ids: np.ndarray
    handedness: np.ndarray
    frame_index: np.ndarray
    sources: np.ndarray | None = None
    coords: str = "pixels"
    notes: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def is_sequence(self) -> bool:
        return self.landmarks.ndim == 4

    def validate(self, where: str = "landmark data") -> LandmarkSet:
        """Raise one-line DataErrors naming ``where`` and the problem; returns self."""
        lm = self.landmarks
        if lm.ndim not in (3, 4) or lm.shape[-2:] != (NUM_LANDMARKS, 3):
            raise DataError(f"{where}: landmarks have shape {list(lm.shape)}; expected [N, 21, 3] or [N, T, 21, 3]")
        n = len(lm)
        if n == 0:
            raise DataError(f"{where}: no examples")
        if not np.issubdtype(lm.dtype, np.floating):
            raise DataError(f"{where}: landmarks are {lm.dtype}; expected floats")
        if not np.all(np.isfinite(lm)):
            bad = int((~np.isfinite(lm)).reshape(n, -1).any(1).sum())
            raise DataError(f"{where}: {bad} example(s) hold NaN or infinite landmarks")
        if not self.class_names:
            raise DataError(f"{where}: no class_names")
        for name, arr in (("labels", self.labels), ("person_ids", self.person_ids), ("handedness", self.handedness)):
            if arr.shape != (n,):
                raise DataError(f"{where}: {name} has shape {list(arr.shape)}; expected [{n}] (one per example)")
        if self.frame_index.shape not in ((n,), lm.shape[:2]):
            raise DataError(f"{where}: frame_index has shape {list(self.frame_index.shape)}; expected [{n}]"
                            + (f" or [{n}, {lm.shape[1]}]" if self.is_sequence else ""))
        if not np.issubdtype(self.labels.dtype, np.integer):
            raise DataError(f"{where}: labels are {self.labels.dtype}; expected integer class indices")
        k = len(self.class_names)
        outside = (self.labels < 0) | (self.labels >= k)
        if outside.any():
            raise DataError(f"{where}: {int(outside.sum())} label(s) are not one of the {k} class_names "
                            f"(e.g. {int(self.labels[outside][0])}; valid 0..{k - 1})")
        ids = np.asarray(self.person_ids).astype(str)
        if np.any(np.char.strip(ids) == ""):
            raise DataError(f"{where}: {int((np.char.strip(ids) == '').sum())} example(s) have no person id; "
                            "person ids keep one person out of two splits")
        if not np.isin(self.handedness, (LEFT, RIGHT, UNKNOWN)).all():
            raise DataError(f"{where}: handedness must be 0 (right), 1 (left) or -1 (unknown)")
        if self.sources is not None and self.sources.shape != (n,):
            raise DataError(f"{where}: sources has shape {list(self.sources.shape)}; expected [{n}]")
        if self.coords not in COORDS:
            raise DataError(f"{where}: coords is {self.coords!r}; expected one of {COORDS}")
        return self

    def subset(self, idx: np.ndarray) -> LandmarkSet:
        return LandmarkSet(self.landmarks[idx], self.labels[idx], self.class_names, self.person_ids[idx],
                           self.handedness[idx], self.frame_index[idx],
                           None if self.sources is None else self.sources[idx], self.coords, dict(self.notes))

    def features(self, spec: FeatureSpec) -> np.ndarray:
        """Model input [N, T, 21, 3] (T = 1 for photos) by the one feature rule."""
        lm = self.landmarks if self.is_sequence else self.landmarks[:, None]
        hand = self.handedness.reshape(-1, 1)
        return landmark_features(lm, hand, spec)


# --------------------------------------------------------------------------- files
def save_landmarks(data: LandmarkSet, path: str | Path) -> Path:
    """Validate, then write one .npz (atomically: a partial file never carries the final name)."""
    path = Path(path)
    data.validate(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "landmarks": data.landmarks.astype(np.float32), "labels": data.labels.astype(np.int32),
        "class_names": np.asarray(data.class_names, dtype=str),
        "person_ids": np.asarray(data.person_ids, dtype=str),
        "handedness": data.handedness.astype(np.int8), "frame_index": data.frame_index.astype(np.int32),
        "coords": np.asarray(data.coords), "notes": np.asarray(json.dumps(data.notes)),
    }
    if data.sources is not None:
        arrays["sources"] = np.asarray(data.sources, dtype=str)
    with writing(path, ".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


REQUIRED = ("landmarks", "labels", "class_names", "person_ids")


def load_landmarks(path: str | Path) -> LandmarkSet:
    """Read and validate one .npz; any problem is one DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"landmark file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz landmark file ({type(exc).__name__}: {exc})") from None
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)} (needs {', '.join(REQUIRED)}; see "
                        "rnn_jax/data/landmark_files.py)")
    n = len(arrays["labels"])
    notes = {}
    if "notes" in arrays:
        try:
            notes = json.loads(str(arrays["notes"]))
        except ValueError:
            notes = {}
    data = LandmarkSet(
        landmarks=arrays["landmarks"], labels=arrays["labels"],
        class_names=tuple(str(c) for c in np.atleast_1d(arrays["class_names"])),
        person_ids=np.asarray(arrays["person_ids"]).astype(str),
        handedness=arrays.get("handedness", np.full(n, UNKNOWN, np.int8)),
        frame_index=arrays.get("frame_index", np.full(n, -1, np.int32)),
        sources=arrays.get("sources"), coords=str(arrays.get("coords", "pixels")), notes=notes)
    return data.validate(str(path))


def find_split_files(folder: Path) -> dict[str, Path]:
    """``train.npz``, ``val.npz``, ``test.npz`` in ``folder`` (train and val required together)."""
    return {s: folder / f"{s}.npz" for s in SPLITS if (folder / f"{s}.npz").is_file()}
