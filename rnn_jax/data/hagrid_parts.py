"""HaGRID as people really have it: hand crops, unannotated photos and annotated splits, read together.

A HaGRID root may hold any of three parts (``../shared/data/hagrid-sample`` holds all three):

- **crops** (``crops_train/<class>/*.jpg``): tight crops cut at HaGRID's own boxes. Rule: the
  crop is padded with a replicated border (:func:`rnn_jax.hands.pad_for_detection`) and the
  hand finder looks at it; when the palm model misses, the landmark model gets a second look
  at the known box (the whole crop). Person ids are unknown: one id per crop.
- **photos** (``photos_train/<class>/*.jpg``): whole photos, class = folder, no box, no person.
  Rule: the hand finder looks at the whole photo and its tiles; the gesture hand is the one
  reaching **highest** in the frame (right on 30 of 30 two-hand val photos, where the other
  hand rests lower; see docs/hagrid.md). Other hands are not used. Photos without a hand are
  counted and left out. One id per photo.
- **annotated splits** (``hagrid_dataset/`` + ``hagrid_annotations/{train,val,test}/``): kept as
  given, split by ``user_id``. Every annotated box (gesture or ``no_gesture``) gets landmarks
  from the landmark model looking at a square around the box (two passes: upright, then
  turned along the first pass's hand): the box is the label's ground truth.

The crops and photos are HaGRID's train split: they become ``train``; the annotated ``val``
(and ``test``) splits stay what they are. Everything is one :class:`LandmarkSet` per split
plus each hand's box (normalised to the picture its landmarks are in) so the image family
can cut the same hands with the one crop rule (:func:`rnn_jax.hands.hand_crop`).
Extraction is slow (hand models on every picture), so it is cached in chunks: an
interrupted run resumes where it stopped, and a second run reads the cache (the rules and the
extraction: :mod:`rnn_jax.data.hagrid_parts_extract`; this module finds the parts and turns
their rows into split files).
JAX-free (numpy, OpenCV, onnxruntime).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn_jax.atomic import save_npy_atomic, write_json_atomic
from rnn_jax.data.cache import default_cache_dir
from rnn_jax.data.hagrid_annotations import (
    NO_GESTURE,
    ann_dir_v2,
    annotation_files,
    index_images,
    parse_file,
)
from rnn_jax.data.hagrid_parts_extract import (
    MAX_WORKERS,
    RULES_VERSION,
    class_folder_items,
    extract_part,
    highest_hand,
    part_key,
    second_look,
)
from rnn_jax.data.landmark_files import LandmarkSet, save_landmarks
from rnn_jax.errors import DataError
from rnn_jax.hands.features import handedness_code

__all__ = [
    "BALANCE_SHARE", "CAP_SHARE", "CROP_DIRS", "MAX_WORKERS", "NO_GESTURE", "PHOTO_DIRS",
    "RULES_VERSION", "SET_RULES_VERSION", "HagridParts", "annotated_items", "balanced", "describe", "extract_part",
    "find_parts", "highest_hand", "is_parts_root", "prepare_landmarks", "second_look",
]

CROP_DIRS = ("crops_train", "crops")
PHOTO_DIRS = ("photos_train", "photos")
# Training classes with fewer hands than this share of the median class are repeated up to it
# (the six gestures only the unannotated photos show have ~70 hands against ~1,000 per crop
# class and 6,948 no_gesture: unrepeated, a model sends every one of them to no_gesture).
BALANCE_SHARE = 0.5
# ... and classes with more than CAP_SHARE x the median are cut to it (seeded): all 6,948 no_gesture
# hands sent val hands of three, four, two_up to no_gesture (val 71% -> 88% with the cap, same
# model; docs/hagrid.md). The hands left out are counted in parts.json.
CAP_SHARE = 1.0
SET_RULES_VERSION = 3  # bump when the way parts become split files changes (not the extraction)


@dataclass(frozen=True)
class HagridParts:
    """Which parts a root holds (None = absent)."""

    root: Path
    crops: Path | None = None
    photos: Path | None = None
    annotated: dict[str, tuple[Path, list[Path]]] = field(default_factory=dict)  # split -> (images, jsons)

    @property
    def found(self) -> list[str]:
        return ([n for n, p in (("crops", self.crops), ("photos", self.photos)) if p]
                + [f"annotated {s}" for s in self.annotated])


def find_parts(root: str | Path) -> HagridParts:
    """The parts under ``root``; DataError when it holds none."""
    root = Path(root).expanduser().resolve()  # absolute: one cache slot whatever the working directory
    if not root.is_dir():
        raise DataError(f"HaGRID folder {root} does not exist")
    crops = next((root / d for d in CROP_DIRS if (root / d).is_dir()), None)
    photos = next((root / d for d in PHOTO_DIRS if (root / d).is_dir()), None)
    annotated: dict[str, tuple[Path, list[Path]]] = {}
    if ann_dir_v2(root) is not None:
        images = root / "hagrid_dataset" if (root / "hagrid_dataset").is_dir() else root
        for split, files in annotation_files(root, "v2").items():
            annotated[split] = (images, files)
    parts = HagridParts(root, crops, photos, annotated)
    if not parts.found:
        raise DataError(f"{root} holds no HaGRID part (crops_train/, photos_train/, hagrid_annotations/)")
    return parts


def is_parts_root(root: str | Path) -> bool:
    """True when ``root`` holds crops or unannotated photos (which the plain layouts cannot read)."""
    root = Path(root).expanduser()
    return root.is_dir() and any((root / d).is_dir() for d in CROP_DIRS + PHOTO_DIRS)


def annotated_items(images: Path, files: list[Path]) -> list[tuple[Path, dict]]:
    """(picture, its boxes, labels and person) of every annotated photo found under ``images``."""
    index = index_images(images, [])
    items = []
    for f in files:
        entries, _bad = parse_file(f, "given")
        for e in entries:
            paths = index.get(e.image_id)
            if not paths:  # annotated but not on disk (a partial download): nothing to score
                continue
            items.append((Path(paths[0]), {"boxes": e.boxes, "labels": e.labels, "user": e.user}))
    return items


# --------------------------------------------------------------------------- sets
def _as_set(rows: list[dict], class_names: tuple[str, ...], notes: dict) -> tuple[LandmarkSet, np.ndarray]:
    index = {c: i for i, c in enumerate(class_names)}
    rows = [r for r in rows if r["label"] in index]
    data = LandmarkSet(np.asarray([r["lm"] for r in rows], np.float32),
                       np.asarray([index[r["label"]] for r in rows], np.int32), class_names,
                       np.asarray([r["person"] for r in rows]),
                       np.asarray([handedness_code(r["hand"]) for r in rows], np.int8),
                       np.full(len(rows), -1, np.int32), np.asarray([r["source"] for r in rows]),
                       "pixels", notes)
    return data.validate("HaGRID parts"), np.asarray([r["box"] for r in rows], np.float32)


def balanced(rows: list[dict], share: float = BALANCE_SHARE, cap: float = CAP_SHARE,
             seed: int = 0) -> tuple[list[dict], dict[str, float]]:
    """Repeat the rows of classes under ``share`` x the median class size up to it, cut classes over
    ``cap`` x the median down to it (seeded); returns the rows and each changed class's factor.
    Repeats see different augmentation each epoch."""
    by_class: dict[str, list[dict]] = {}
    for r in rows:
        by_class.setdefault(r["label"], []).append(r)
    median = float(np.median([len(v) for v in by_class.values()]))
    rng = np.random.default_rng(seed)
    out, factors = [], {}
    for label, members in by_class.items():
        if len(members) < share * median:
            factor = int(np.ceil(share * median / len(members)))
            factors[label] = factor
            out += members * factor
        elif len(members) > cap * median:
            keep = np.sort(rng.choice(len(members), int(cap * median), replace=False))
            factors[label] = round(len(keep) / len(members), 3)
            out += [members[i] for i in keep]
        else:
            out += members
    return out, factors


def prepare_landmarks(root: str | Path, no_gesture: bool = True, finder=None, cache_dir: str | Path | None = None,
                      progress: bool = True) -> Path:
    """Extract (or read from the cache) every part under ``root`` into one folder of
    ``train.npz`` / ``val.npz`` (/ ``test.npz``), ``boxes_<split>.npy`` and ``parts.json``
    (what was used for what, counts per part and hands per class); returns the folder."""
    parts = find_parts(root)
    base = Path(cache_dir) if cache_dir else default_cache_dir().parent / "hagrid-parts"
    plan: list[tuple[str, str, list]] = []  # (split, kind, items)
    if parts.crops:
        plan.append(("train", "crops", class_folder_items(parts.crops)))
    if parts.photos:
        plan.append(("train", "photos", class_folder_items(parts.photos)))
    for split, (images, files) in parts.annotated.items():
        plan.append((split, "annotated", annotated_items(images, files)))
    if not any(split == "train" for split, _, _ in plan):
        raise DataError(f"{parts.root} has no training part (crops, unannotated photos or annotated train)")
    if not any(split == "val" for split, _, _ in plan):
        raise DataError(f"{parts.root} has no annotated val split (hagrid_annotations/val) to validate on")
    keys = [part_key(kind, items) for _, kind, items in plan]
    out = base / hashlib.sha256(("|".join(keys) + f"|ng={no_gesture}|sets={SET_RULES_VERSION}").encode()
                                ).hexdigest()[:16]
    if (out / "parts.json").is_file():
        return out
    workers = 1
    if finder is None:
        from rnn_jax.hands import HandFinder

        finder = HandFinder.load(threads=1)
        workers = max(1, min(os.cpu_count() or 1, MAX_WORKERS))
    rows: dict[str, list[dict]] = {}
    report: dict = {"root": str(parts.root), "rules_version": RULES_VERSION, "parts": []}
    for (split, kind, items), key in zip(plan, keys, strict=True):
        kept, counts = extract_part(kind, items, finder, base / "parts" / f"{kind}-{key}", progress, workers)
        rows.setdefault(split, []).extend(kept)
        report["parts"].append({"split": split, "part": kind, "path": str(items[0][0].parent.parent)
                                if items else "", **counts})
    labels = sorted({r["label"] for rs in rows.values() for r in rs} - {NO_GESTURE})
    class_names = tuple(labels + ([NO_GESTURE] if no_gesture else []))
    out.mkdir(parents=True, exist_ok=True)
    report["class_names"] = list(class_names)
    report["hands_per_class"] = {}
    for split, split_rows in rows.items():
        if split == "train":
            split_rows, report["repeated"] = balanced(split_rows)
        data, boxes = _as_set(split_rows, class_names, {"hagrid_parts": str(parts.root)})
        save_landmarks(data, out / f"{split}.npz")
        save_npy_atomic(out / f"boxes_{split}.npy", boxes)
        report["hands_per_class"][split] = {c: sum(1 for r in rows[split] if r["label"] == c) for c in class_names}
        report.setdefault("people", {})[split] = int(len(np.unique(data.person_ids)))
    people = {split: {r["person"] for r in split_rows} for split, split_rows in rows.items()}
    report["people_in_two_splits"] = sum(len(people["train"] & people[s]) for s in people if s != "train")
    write_json_atomic(out / "parts.json", report, indent=2)
    return out


def describe(folder: Path) -> str:
    """A short table of what each part gave (for the run's start-up message)."""
    report = json.loads((Path(folder) / "parts.json").read_text())
    lines = [f"HaGRID parts of {report['root']} (landmarks cached in {folder}):"]
    for p in report["parts"]:
        extra = ", ".join(f"{k} {v}" for k, v in p.items() if k not in ("split", "part", "path", "pictures",
                                                                           "hands_kept"))
        lines.append(f"  {p['part']:<10} -> {p['split']:<5} {p['pictures']:>6} pictures, {p['hands_kept']:>6} hands "
                     f"kept ({extra})")
    per = report["hands_per_class"]
    if report.get("repeated"):
        lines.append("  training classes balanced (under half the median repeated, over the median cut): "
                     + ", ".join(f"{k} x{v:g}" for k, v in report["repeated"].items()))
    lines.append("  hands per class: " + "; ".join(
        f"{c} " + "/".join(str(per[s][c]) for s in per) for c in report["class_names"]) + f"  ({'/'.join(per)})")
    return "\n".join(lines)
