"""HaGRID annotations -> landmark sets, reading the JSON only (no image is opened).

HaGRID annotates 21 landmarks per hand (``hand_landmarks`` in v2, ``landmarks`` in v1 and the
30k mirror), so a landmark model can train on HaGRID without decoding a photo. The files and
their schema are read by the one HaGRID reader (:mod:`rnn_jax.data.hagrid_annotations`);
pools without a given val split are split by person with the one rule
(:func:`rnn_jax.data.splits.split_by_person`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from rnn_jax.data.hagrid_annotations import NO_GESTURE, annotation_files, parse_file, resolve_layout
from rnn_jax.data.landmark_files import LandmarkSet
from rnn_jax.data.splits import split_by_person
from rnn_jax.errors import DataError
from rnn_jax.hands.features import NUM_LANDMARKS, handedness_code


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
    layout, base = resolve_layout(Path(root).expanduser())
    if layout == "folders":
        raise DataError(f"{root} holds image folders, not HaGRID annotations; extract landmarks with "
                        "`python tools/extract_landmarks.py --photos ...` first")
    pools: dict[str, dict] = {}
    skipped: dict[str, int] = defaultdict(int)
    for pool, files in annotation_files(base, layout).items():
        rows = defaultdict(list)
        for path in files:
            entries, bad = parse_file(path, pool)
            if bad:
                skipped["malformed entry"] += bad
            for e in entries:
                hands = e.hand_landmarks or []
                if not isinstance(hands, list):
                    skipped["malformed landmarks"] += 1
                    continue
                for i, label in enumerate(e.labels):
                    if label != e.gesture and not (no_gesture and label == NO_GESTURE):
                        continue
                    pts = _hand_points(hands[i]) if i < len(hands) else None
                    if pts is None:
                        skipped["hand without 21 landmarks"] += 1
                        continue
                    rows["landmarks"].append(pts)
                    rows["label"].append(label)
                    rows["person"].append(e.user)
                    rows["hand"].append(handedness_code(e.leading_hand if label == e.gesture else None))
                    rows["source"].append(f"{path.name}:{e.image_id}")
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
