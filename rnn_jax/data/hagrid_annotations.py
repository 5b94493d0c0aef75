"""The one HaGRID annotation reader: layouts, annotation files, the image index and the JSON schema.

Why one: three readers use HaGRID's annotations (the image loader :mod:`rnn_jax.data.hagrid`,
the landmark reader :mod:`rnn_jax.data.landmark_hagrid` and the parts reader
:mod:`rnn_jax.data.hagrid_parts`), and they must agree on where the files are and what a
valid entry is.

Layouts (see docs on HaGRID layouts):

- ``"v2"``: ``hagrid_dataset/<gesture>/<id>.jpg`` + ``hagrid_annotations/{train,val,test}/<gesture>.json``
  (HaGRIDv2 and its 512p copy; the annotation folder may also be called ``annotations``);
- ``"sample30k"``: ``hagrid-sample-30k-384p/hagrid_30k/train_val_<gesture>/<id>.jpg`` +
  ``hagrid-sample-30k-384p/ann_train_val/<gesture>.json`` (outer or inner folder as root);
- ``"v1"``: ``train_val_<gesture>/<id>.jpg``, ``ann_train_val/<gesture>.json`` and optionally
  ``test/<gesture>/<id>.jpg`` + ``ann_test/<gesture>.json``;
- ``"folders"``: plain class folders (no annotations).

Images are matched to annotations by file stem (the image id), wherever they sit under the
root, so archives that unpack one folder deeper still load.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_jax.data.folders import IMAGE_EXTENSIONS, natural_key
from rnn_jax.errors import DataError

LAYOUTS = ("v2", "sample30k", "v1", "folders")
NO_GESTURE = "no_gesture"
SAMPLE30K_DIR = "hagrid-sample-30k-384p"

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


# ----------------------------------------------------------------------------- layout


def ann_dir_v2(root: Path) -> Path | None:
    """The folder holding {train,val,test}/<gesture>.json (also when an archive nested it once)."""
    tops = [root / name for name in ("hagrid_annotations", "annotations") if (root / name).is_dir()]
    nested = [d for top in tops for d in sorted(top.iterdir()) if d.is_dir()]
    for cand in tops + nested:
        if any(next((cand / s).glob("*.json"), None) for s in ("train", "val", "test")
               if (cand / s).is_dir()):
            return cand
    return None


def resolve_layout(root: Path) -> tuple[str, Path]:
    """(layout, the folder the layout is relative to)."""
    if not root.is_dir():
        raise DataError(f"HaGRID folder {root} does not exist; check the path or download it with "
                        "`python tools/download_hagrid.py`")
    candidates = [root, root / SAMPLE30K_DIR]
    if root.name == "hagrid_30k":
        candidates.append(root.parent)
    for cand in candidates:
        if (cand / "ann_train_val").is_dir():
            return ("sample30k" if (cand / "hagrid_30k").is_dir() or cand.name == SAMPLE30K_DIR
                    else "v1"), cand
    if ann_dir_v2(root) is not None:
        return "v2", root
    if _looks_like_folders(root):
        return "folders", root
    raise DataError(f"{root} is not a HaGRID layout nor plain class folders: expected "
                    "hagrid_dataset/ + hagrid_annotations/, ann_train_val/ + train_val_<gesture>/, "
                    "or <class>/*.jpg folders")


def _looks_like_folders(root: Path) -> bool:
    for d in root.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            if d.name.lower() in ("train", "training"):
                return True
            if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in d.iterdir() if p.is_file()):
                return True
    return False


def detect_hagrid_layout(root: str | Path) -> str:
    """Which HaGRID layout ``root`` holds: "v2", "sample30k", "v1" or "folders" (DataError if none)."""
    return resolve_layout(Path(root).expanduser())[0]


def looks_like_hagrid(path: Path) -> bool:
    """True when ``path`` holds HaGRID annotations (any layout but plain folders)."""
    try:
        return resolve_layout(path)[0] != "folders"
    except DataError:
        return False


# ----------------------------------------------------------------------------- files


def annotation_files(base: Path, layout: str) -> dict[str, list[Path]]:
    """pool -> JSON files (hidden folders such as .ipynb_checkpoints are ignored)."""
    if layout == "v2":
        ann = ann_dir_v2(base)
        assert ann is not None
        pools = {s: ann / s for s in ("train", "val", "test")}
    else:
        pools = {"trainval": base / "ann_train_val", "test": base / "ann_test"}
    out = {}
    for pool, folder in pools.items():
        if folder.is_dir():
            files = sorted((p for p in folder.glob("*.json") if not p.name.startswith(".")),
                           key=lambda p: natural_key(p.name))
            if files:
                out[pool] = files
    if not out:
        raise DataError(f"no annotation JSON files found under {base}; the HaGRID annotations "
                        "archive is missing or unpacked elsewhere")
    return out


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
    if len(box) != 4 or box[2] <= 0 or box[3] <= 0 or not all(np.isfinite(box)):
        return None
    return box  # type: ignore[return-value]


def parse_file(path: Path, pool: str) -> tuple[list[HagridEntry], int]:
    """Entries of one gesture JSON, and how many entries were malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
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
    return entries, bad


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
