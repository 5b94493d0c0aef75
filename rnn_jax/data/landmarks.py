"""Landmark data in one format: arrays, labels, person ids, handedness, frame index (.npz).

Why one format: landmarks come from three places (the hand finder on photos and videos,
``tools/extract_landmarks.py``; HaGRID's annotations, read here without decoding an image;
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
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn_jax.data.types import Dataset, Split
from rnn_jax.errors import DataError
from rnn_jax.hands.features import (
    FINGERS,
    LEFT,
    NUM_LANDMARKS,
    RIGHT,
    UNKNOWN,
    FeatureSpec,
    augment_landmarks,
    handedness_code,
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
    tmp = path.with_name(f".{path.name}.tmp.npz")
    arrays = {
        "landmarks": data.landmarks.astype(np.float32), "labels": data.labels.astype(np.int32),
        "class_names": np.asarray(data.class_names, dtype=str),
        "person_ids": np.asarray(data.person_ids, dtype=str),
        "handedness": data.handedness.astype(np.int8), "frame_index": data.frame_index.astype(np.int32),
        "coords": np.asarray(data.coords), "notes": np.asarray(json.dumps(data.notes)),
    }
    if data.sources is not None:
        arrays["sources"] = np.asarray(data.sources, dtype=str)
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
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
                        "rnn_jax/data/landmarks.py)")
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


# --------------------------------------------------------------------------- splits
def split_by_person(data: LandmarkSet, val_fraction: float = 0.2, seed: int = 0) -> tuple[LandmarkSet, LandmarkSet]:
    """Seeded person-disjoint train/val split (nobody in both)."""
    people = np.unique(data.person_ids)
    if len(people) < 2:
        raise DataError(f"only {len(people)} person id(s) in the landmark data: a person-disjoint "
                        "train/val split needs at least 2 (or give train.npz and val.npz)")
    order = np.random.default_rng(seed).permutation(len(people))
    n_val = max(1, round(val_fraction * len(people)))
    val_people = set(people[order[:n_val]].tolist())
    is_val = np.array([p in val_people for p in data.person_ids])
    return data.subset(np.flatnonzero(~is_val)), data.subset(np.flatnonzero(is_val))


# --------------------------------------------------------------------------- sequences
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


# --------------------------------------------------------------------------- HaGRID
def _hand_points(value) -> np.ndarray | None:
    """21 [x, y] (or [x, y, z]) points -> [21, 3] float, or None when absent/malformed."""
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 2 or arr.shape[0] != NUM_LANDMARKS or arr.shape[1] not in (2, 3) or not np.isfinite(arr).all():
        return None
    return np.concatenate([arr[:, :2], np.zeros((NUM_LANDMARKS, 1))], 1) if arr.shape[1] == 2 else arr


def read_hagrid_landmarks(root: str | Path, no_gesture: bool = False, seed: int = 0,
                          val_fraction: float = 0.15) -> dict[str, LandmarkSet]:
    """HaGRID annotations -> LandmarkSets per split, reading the JSON only (no image is opened).

    Each annotated gesture hand with 21 landmarks (``landmarks`` or ``hand_landmarks``) is one
    example; ``no_gesture`` hands become a class when asked. v2 keeps its train/val/test
    folders; v1 and the 30k mirror (one train+val pool) are split by ``user_id``. Coordinates
    stay HaGRID's normalised 0..1 (no z: the feature rule zeroes z for these).
    """
    from rnn_jax.data.hagrid import _annotation_files, _resolve

    layout, base = _resolve(Path(root).expanduser())
    if layout == "folders":
        raise DataError(f"{root} holds image folders, not HaGRID annotations; extract landmarks with "
                        "`python tools/extract_landmarks.py --photos ...` first")
    pools: dict[str, dict] = {}
    skipped = defaultdict(int)
    for pool, files in _annotation_files(base, layout).items():
        rows = defaultdict(list)
        for path in files:
            try:
                anns = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise DataError(f"annotation file {path} is not valid JSON ({exc})") from None
            if not isinstance(anns, dict):
                raise DataError(f"annotation file {path} is not a HaGRID annotation (a JSON object keyed by image id)")
            gesture = path.stem
            for image_id, ann in anns.items():
                if not isinstance(ann, dict) or not isinstance(ann.get("labels"), list):
                    skipped["malformed entry"] += 1
                    continue
                hands = ann.get("hand_landmarks", ann.get("landmarks")) or []
                if not isinstance(hands, list):
                    skipped["malformed landmarks"] += 1
                    continue
                for i, label in enumerate(ann["labels"]):
                    if label != gesture and not (no_gesture and label == "no_gesture"):
                        continue
                    pts = _hand_points(hands[i]) if i < len(hands) else None
                    if pts is None:
                        skipped["hand without 21 landmarks"] += 1
                        continue
                    lead = ann.get("leading_hand") if label == gesture else None
                    rows["landmarks"].append(pts)
                    rows["label"].append(str(label))
                    rows["person"].append(str(ann.get("user_id") or f"image:{image_id}"))
                    rows["hand"].append(handedness_code(lead))
                    rows["source"].append(f"{path.name}:{image_id}")
        if rows["label"]:
            pools[pool] = rows
    if not pools:
        raise DataError(f"no hand in the HaGRID annotations under {root} has 21 landmarks "
                        "('landmarks' / 'hand_landmarks' fields)")
    class_names = tuple(sorted({lab for rows in pools.values() for lab in rows["label"]}))

    def as_set(rows: dict) -> LandmarkSet:
        n = len(rows["label"])
        return LandmarkSet(np.asarray(rows["landmarks"], np.float32),
                           np.array([class_names.index(lab) for lab in rows["label"]], np.int32),
                           class_names, np.asarray(rows["person"]), np.asarray(rows["hand"], np.int8),
                           np.full(n, -1, np.int32), np.asarray(rows["source"]), "normalized",
                           {"hagrid_layout": layout, "skipped": dict(skipped)}).validate(f"HaGRID annotations in {root}")

    out = {name: as_set(rows) for name, rows in pools.items()}
    if "trainval" in out:
        train, val = split_by_person(out.pop("trainval"), val_fraction, seed)
        out.update(train=train, val=val)
    if "train" in out and "val" not in out:
        out["train"], out["val"] = split_by_person(out["train"], val_fraction, seed)
    if "train" not in out:
        raise DataError(f"the HaGRID annotations under {root} have no training split with landmarks")
    return out


def looks_like_hagrid(path: Path) -> bool:
    from rnn_jax.data.hagrid import _resolve

    try:
        return _resolve(path)[0] != "folders"
    except DataError:
        return False


# --------------------------------------------------------------------------- built-in
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


# --------------------------------------------------------------------------- Dataset
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
        return f"hagrid-landmarks:{p.name}", read_hagrid_landmarks(p, seed=seed)
    raise DataError(f"{p} holds no train.npz/val.npz and no HaGRID annotations")


def landmark_dataset(path: str | Path | None, seed: int = 0, mirror_left: bool = True,
                     window: int = 0, streams=None) -> Dataset:
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
        from rnn_jax.data.streams import make_streams

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
