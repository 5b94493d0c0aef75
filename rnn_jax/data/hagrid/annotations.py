"""The one HaGRID annotation schema: entries, boxes, landmarks in frame pixels, the image index.

Why one: the image loader (:mod:`.images`), the landmark preparation (:mod:`.prepare`) and the
live check (``tools/live_checks``) read HaGRID's annotations and must agree on what a valid
entry is. Where the files are is :mod:`.layout`'s job.

Landmarks (``hand_landmarks`` in v2, ``landmarks`` in v1 and the 30k mirror) are normalised
like the boxes, to the photo's width and height: :func:`landmarks_in_pixels` puts them back
in frame pixels with the photo's true aspect, the coordinates the live hand finder gives.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_jax.data.folders import IMAGE_EXTENSIONS
from rnn_jax.errors import DataError

NO_GESTURE = "no_gesture"

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class HagridEntry:
    """One annotated photo: its boxes and labels, its person, and (when given) its hands' landmarks."""

    image_id: str
    gesture: str  # the annotation file's gesture (the photo's class)
    user: str  # user_id, or "image:<id>" when the annotation has none
    boxes: tuple[Box, ...]
    labels: tuple[str, ...]
    united: Box | None
    pool: str  # "train", "val", "test" (given) or "trainval" (to be split)
    hand_landmarks: object = None  # the raw "hand_landmarks" (v2) or "landmarks" (v1) list, one per box
    leading_hand: str | None = None


# ----------------------------------------------------------------------------- files


def index_images(base: Path, skip: Iterable[Path]) -> dict[str, list[str]]:
    """image id (file stem) -> paths of image files anywhere under ``base``."""
    skip_set = {str(p) for p in skip}
    index: dict[str, list[str]] = defaultdict(list)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and os.path.join(dirpath, d) not in skip_set)
        for name in filenames:
            stem, ext = os.path.splitext(name)
            if ext.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                index[stem].append(os.path.join(dirpath, name))
    return index


def folder_gesture(path: str) -> str:
    """The gesture an image's folder names (``train_val_<gesture>`` or ``<gesture>``)."""
    name = os.path.basename(os.path.dirname(path))
    return name[len("train_val_"):] if name.startswith("train_val_") else name


# ----------------------------------------------------------------------------- schema


def as_box(value) -> Box | None:
    """[x, y, w, h] (normalised, positive size, finite) or None."""
    try:
        box = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(box) != 4 or box[2] <= 0 or box[3] <= 0 or not all(map(math.isfinite, box)):
        return None
    return box  # type: ignore[return-value]


def parse_file(path: Path, pool: str) -> tuple[list[HagridEntry], int]:
    """Entries of one gesture JSON, and how many entries were malformed."""
    return parse_file_with_digest(path, pool)[:2]


def parse_file_with_digest(path: Path, pool: str) -> tuple[list[HagridEntry], int, str]:
    """:func:`parse_file` and the SHA-256 of the file's bytes (what extraction keys its chunks by:
    hashing the bytes once is far cheaper than serialising a million entries again)."""
    try:
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"annotation file {path} is not valid JSON ({exc}); re-download or "
                        "re-extract the HaGRID annotations") from exc
    if not isinstance(data, dict):
        raise DataError(f"annotation file {path} is not a HaGRID annotation (expected a JSON "
                        "object keyed by image id); re-download the annotations")
    gesture, entries, bad = path.stem, [], 0
    for image_id, ann in data.items():
        if not isinstance(ann, dict) or not isinstance(ann.get("bboxes"), list) \
                or not isinstance(ann.get("labels"), list) \
                or len(ann["bboxes"]) != len(ann["labels"]):
            bad += 1
            continue
        boxes = [as_box(b) for b in ann["bboxes"]]
        if any(b is None for b in boxes):
            bad += 1
            continue
        united = united_box(ann, gesture)
        user = ann.get("user_id")
        entries.append(HagridEntry(
            str(image_id), gesture, str(user) if user else f"image:{image_id}",
            tuple(boxes), tuple(str(label) for label in ann["labels"]),  # type: ignore[arg-type]
            united, pool, ann.get("hand_landmarks", ann.get("landmarks")), ann.get("leading_hand")))
    if data and not entries:
        raise DataError(f"annotation file {path} has no entry in HaGRID's schema "
                        "({id: {bboxes, labels, user_id}}); re-download the annotations")
    return entries, bad, digest


def united_box(ann: dict, gesture: str) -> Box | None:
    """HaGRIDv2's box around both hands of a two-handed gesture ([[x, y, w, h]] or null)."""
    box, label = ann.get("united_bbox"), ann.get("united_label")
    if not box or not label:
        return None
    label = label[0] if isinstance(label, list) else label
    box = box[0] if isinstance(box[0], list) else box
    return as_box(box) if str(label) == gesture else None


def gesture_box(e: HagridEntry) -> Box | None:
    """The box of the photo's gesture: the united box of a two-handed gesture, else its labelled box."""
    if e.united is not None:
        return e.united
    for box, label in zip(e.boxes, e.labels, strict=True):
        if label == e.gesture:
            return box
    return None


# ----------------------------------------------------------------------------- landmarks
NUM_POINTS = 21


def hand_points(value) -> list | None:
    """One hand's annotated landmarks, 21 [x, y] (or [x, y, z]) normalised points -> 21 [x, y] lists,
    or None when absent, empty or malformed (that hand then goes to the hand finder). Plain
    Python: a million hands are checked in seconds, no array made per hand."""
    if not isinstance(value, list) or len(value) != NUM_POINTS:
        return None
    out = []
    for point in value:
        if not isinstance(point, list) or len(point) not in (2, 3):
            return None
        x, y = point[0], point[1]
        if not (isinstance(x, (int, float)) and isinstance(y, (int, float))) or not (math.isfinite(x) and math.isfinite(y)):
            return None
        out.append([x, y])
    return out


def raw_box_landmarks(entry: HagridEntry) -> list:
    """Each box's annotated landmarks as the JSON gives them (None where absent), in box order;
    :func:`box_landmarks` checks them."""
    raw = entry.hand_landmarks
    hands = raw if isinstance(raw, list) else []
    return [hands[i] if i < len(hands) else None for i in range(len(entry.boxes))]


def box_landmarks(entry_or_raw) -> list[list | None]:
    """Each box's annotated landmarks (21 normalised [x, y]) or None where absent or malformed."""
    raw = raw_box_landmarks(entry_or_raw) if isinstance(entry_or_raw, HagridEntry) else entry_or_raw
    return [hand_points(value) for value in raw]


def landmarks_in_pixels(points, width: int, height: int) -> np.ndarray:
    """Normalised 21 [x, y] -> [21, 3] frame pixels (x * width, y * height, z = 0: HaGRID gives no depth).

    Why pixels: HaGRID normalises x by the width and y by the height, so in a 16:9 photo a hand
    kept in 0..1 units is squeezed to 0.56x in x against what the live finder sees."""
    points = np.asarray(points, np.float64)
    out = np.zeros((NUM_POINTS, 3), np.float64)
    out[:, 0] = points[:, 0] * width
    out[:, 1] = points[:, 1] * height
    return out
