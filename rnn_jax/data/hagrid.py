"""HaGRID (v1, v2, the 30k/384p sample, or plain class folders) as a Dataset.

Layouts (see docs on HaGRID layouts):

- ``"v2"``: ``hagrid_dataset/<gesture>/<id>.jpg`` + ``hagrid_annotations/{train,val,test}/<gesture>.json``
  (HaGRIDv2 and its 512p copy; the annotation folder may also be called ``annotations``);
- ``"sample30k"``: ``hagrid-sample-30k-384p/hagrid_30k/train_val_<gesture>/<id>.jpg`` +
  ``hagrid-sample-30k-384p/ann_train_val/<gesture>.json`` (outer or inner folder as root);
- ``"v1"``: ``train_val_<gesture>/<id>.jpg``, ``ann_train_val/<gesture>.json`` and optionally
  ``test/<gesture>/<id>.jpg`` + ``ann_test/<gesture>.json``;
- ``"folders"``: plain class folders, handed to :func:`rnn_jax.data.folders.load_class_folders`.

Images are matched to annotations by file stem (the image id), wherever they sit under
the root, so archives that unpack one folder deeper still load. Splits are by
``user_id``: the given split when there is one, otherwise a seeded split of people, so
no person is in two splits.

Hand crops: evaluation uses a square of 1.5x the box's longer side (``preprocess.square_box``)
stored at exactly ``image_size``. Training crops are stored with more context (2.0x the
box, at ``hand_train_size(image_size)`` px) so the training pipeline can draw a random
box scale in ``HAND_TRAIN_SCALE_RANGE`` from a fixed cache: see :func:`random_context_crop`
and ``Dataset.notes["hand_crop"]``.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_jax.data.cache import ImageItem, SplitSpec, load_decoded
from rnn_jax.data.folders import (
    IMAGE_EXTENSIONS,
    load_class_folders,
    natural_key,
    skipped_note,
)
from rnn_jax.data.types import Dataset, Split
from rnn_jax.errors import DataError
from rnn_jax.hands.crop import HAND_CROP_SCALE
from rnn_jax.preprocess import crop_square

LAYOUTS = ("v2", "sample30k", "v1", "folders")
NO_GESTURE = "no_gesture"
SAMPLE30K_DIR = "hagrid-sample-30k-384p"
HAND_EVAL_SCALE = HAND_CROP_SCALE  # square side / longer box side at evaluation (and live)
HAND_TRAIN_SCALE = 2.0  # context stored for training crops
HAND_TRAIN_SCALE_RANGE = (1.2, 2.0)  # random box scale drawn at train time
HAND_TRAIN_SHIFT = 0.08  # random centre shift, as a fraction of the crop side

Box = tuple[float, float, float, float]


def hand_train_size(image_size: int) -> int:
    """Stored side of training hand crops: the eval crop is then exactly ``image_size`` px inside it."""
    return int(round(image_size * HAND_TRAIN_SCALE / HAND_EVAL_SCALE))


def center_context_crop(images: np.ndarray, out_size: int, stored_scale: float = HAND_TRAIN_SCALE,
                        scale: float = HAND_EVAL_SCALE) -> np.ndarray:
    """Cut the fixed eval-scale crop out of stored training crops (no augmentation)."""
    return np.stack([_context_crop(img, out_size, scale / stored_scale, 0.0, 0.0) for img in images])


def random_context_crop(images: np.ndarray, out_size: int, rng: np.random.Generator,
                        scale_range: tuple[float, float] = HAND_TRAIN_SCALE_RANGE,
                        stored_scale: float = HAND_TRAIN_SCALE,
                        max_shift: float = HAND_TRAIN_SHIFT) -> np.ndarray:
    """Random box-scale augmentation for stored training hand crops (uint8 NHWC in and out).

    Each image gets a box scale drawn log-uniformly from ``scale_range`` (1.5 is what
    evaluation uses) and a small random shift, then is resized to ``out_size``.
    """
    lo, hi = np.log(scale_range[0]), np.log(min(scale_range[1], stored_scale))
    out = []
    for img in images:
        frac = float(np.exp(rng.uniform(lo, hi))) / stored_scale
        dx, dy = rng.uniform(-max_shift, max_shift, size=2)
        out.append(_context_crop(img, out_size, frac, float(dx), float(dy)))
    return np.stack(out)


@dataclass(frozen=True)
class ContextCropView:
    """Training hand crops stored at ``stored_scale`` x the box: each step draws a new box scale."""

    out_size: int
    stored_scale: float = HAND_TRAIN_SCALE
    eval_scale: float = HAND_EVAL_SCALE

    def random(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_context_crop(images, self.out_size, rng, stored_scale=self.stored_scale)

    def clean(self, images: np.ndarray) -> np.ndarray:
        return center_context_crop(images, self.out_size, self.stored_scale, self.eval_scale)


def _context_crop(img: np.ndarray, out_size: int, frac: float, dx: float, dy: float) -> np.ndarray:
    stored = img.shape[0]
    side = max(2, int(round(stored * frac)))
    left = int(round((stored - side) / 2 + dx * side))
    top = int(round((stored - side) / 2 + dy * side))
    return crop_square(np.asarray(img), left, top, side, out_size)


@dataclass(frozen=True)
class _Entry:
    image_id: str
    gesture: str  # the annotation file's gesture (the photo's class)
    user: str
    boxes: tuple[Box, ...]
    labels: tuple[str, ...]
    united: Box | None
    pool: str  # "train", "val", "test" (given) or "trainval" (to be split)


# ----------------------------------------------------------------------------- layout


def _ann_dir_v2(root: Path) -> Path | None:
    """The folder holding {train,val,test}/<gesture>.json (also when an archive nested it once)."""
    tops = [root / name for name in ("hagrid_annotations", "annotations") if (root / name).is_dir()]
    nested = [d for top in tops for d in sorted(top.iterdir()) if d.is_dir()]
    for cand in tops + nested:
        if any(next((cand / s).glob("*.json"), None) for s in ("train", "val", "test")
               if (cand / s).is_dir()):
            return cand
    return None


def _resolve(root: Path) -> tuple[str, Path]:
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
    if _ann_dir_v2(root) is not None:
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
    return _resolve(Path(root).expanduser())[0]


# ----------------------------------------------------------------------------- reading


def _annotation_files(base: Path, layout: str) -> dict[str, list[Path]]:
    """pool -> JSON files (hidden folders such as .ipynb_checkpoints are ignored)."""
    if layout == "v2":
        ann = _ann_dir_v2(base)
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


def _index_images(base: Path, skip: Iterable[Path]) -> dict[str, list[str]]:
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


def _folder_gesture(path: str) -> str:
    name = os.path.basename(os.path.dirname(path))
    return name[len("train_val_"):] if name.startswith("train_val_") else name


def _as_box(value) -> Box | None:
    try:
        box = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(box) != 4 or box[2] <= 0 or box[3] <= 0 or not all(np.isfinite(box)):
        return None
    return box  # type: ignore[return-value]


def _parse_file(path: Path, pool: str) -> tuple[list[_Entry], int]:
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
        boxes = [_as_box(b) for b in ann["bboxes"]]
        if any(b is None for b in boxes):
            bad += 1
            continue
        united = _united_box(ann, gesture)
        user = ann.get("user_id")
        entries.append(_Entry(str(image_id), gesture, str(user) if user else f"image:{image_id}",
                              tuple(boxes), tuple(str(label) for label in ann["labels"]),  # type: ignore[arg-type]
                              united, pool))
    if data and not entries:
        raise DataError(f"annotation file {path} has no entry in HaGRID's schema "
                        "({id: {bboxes, labels, user_id}}); re-download the annotations")
    return entries, bad


def _united_box(ann: dict, gesture: str) -> Box | None:
    """HaGRIDv2's box around both hands of a two-handed gesture ([[x, y, w, h]] or null)."""
    box, label = ann.get("united_bbox"), ann.get("united_label")
    if not box or not label:
        return None
    label = label[0] if isinstance(label, list) else label
    box = box[0] if isinstance(box[0], list) else box
    return _as_box(box) if str(label) == gesture else None


def _split_people(entries: list[_Entry], fractions: dict[str, float], seed: int) -> dict[str, list[_Entry]]:
    """Seeded split of a pool into "train" + the named parts, by person (user_id)."""
    by_user: dict[str, list[_Entry]] = defaultdict(list)
    for e in entries:
        by_user[e.user].append(e)
    users = sorted(by_user)
    wanted = {k: f for k, f in fractions.items() if f > 0}
    if len(users) < len(wanted) + 1:
        raise DataError(f"only {len(users)} people (user_id) in the annotations: a person-disjoint "
                        f"split into train + {', '.join(wanted)} needs at least {len(wanted) + 1}")
    order = np.random.default_rng(seed).permutation(len(users))
    parts: dict[str, list[_Entry]] = {"train": [], **{k: [] for k in wanted}}
    targets = {k: f * len(entries) for k, f in wanted.items()}
    pos = 0
    for k in wanted:  # give each carved part whole people until it reaches its share
        while pos < len(order) - 1 and (not parts[k] or len(parts[k]) + len(by_user[users[order[pos]]]) / 2
                                        <= targets[k]):
            parts[k].extend(by_user[users[order[pos]]])
            pos += 1
    for i in order[pos:]:
        parts["train"].extend(by_user[users[i]])
    return parts


def _gesture_box(e: _Entry) -> Box | None:
    if e.united is not None:
        return e.united
    for box, label in zip(e.boxes, e.labels, strict=True):
        if label == e.gesture:
            return box
    return None


# ----------------------------------------------------------------------------- loader


def load_hagrid(root: str | Path, image_size: int, crop: str = "full", no_gesture: bool = False,
                channels: int = 3, cache_dir: str | Path | None = None, seed: int = 0,
                val_fraction: float = 0.15, test_fraction: float = 0.15, progress: bool = True,
                train_context: bool = True) -> Dataset:
    """Load any HaGRID layout under ``root`` as a Dataset of full frames or hand crops.

    ``crop="full"`` letterboxes whole photos; ``crop="hand"`` crops a square around the
    gesture box (the two-hand ``united_bbox`` for two-handed v2 gestures). ``no_gesture``
    adds the ``no_gesture`` class: with hand crops, every box labelled no_gesture (the free
    second hand, and HaGRIDv2's own no_gesture photos); with full frames only photos that
    contain no gesture at all (HaGRIDv2's no_gesture archive), because a no_gesture box
    shares its photo with a gesture hand. ``train_context`` stores training hand crops with
    extra context for random box-scale augmentation (see the module docstring).
    """
    if crop not in ("full", "hand"):
        raise DataError(f"crop must be 'full' or 'hand', got {crop!r}")
    if image_size < 4:
        raise DataError(f"image_size {image_size} is too small")
    root_path = Path(root).expanduser().resolve()  # absolute: one cache slot whatever the cwd
    layout, base = _resolve(root_path)
    if layout == "folders":
        ds = load_class_folders(base, image_size, crop_mode=crop, channels=channels,
                                cache_dir=cache_dir, val_fraction=val_fraction, seed=seed,
                                progress=progress, test_fraction=test_fraction,
                                find_hands=crop == "hand", train_context=train_context)
        ds.notes["hagrid"] = ("plain class folders: no boxes or user_id, so crop='hand' finds each "
                              "photo's hand once with rnn_jax.hands (photos without one are left out) "
                              "and no_gesture is just a folder name")
        return ds

    ann_files = _annotation_files(base, layout)
    ann_dirs = {f.parent for files in ann_files.values() for f in files}
    index = _index_images(base, ann_dirs)
    if not index:
        raise DataError(f"no images found under {base} (annotations are there); unpack the "
                        "gesture archives next to the annotations")
    folder_gestures = {_folder_gesture(paths[0]) for paths in index.values()}
    json_gestures = {f.stem for files in ann_files.values() for f in files}
    matching = json_gestures & folder_gestures

    def wanted(gesture: str) -> bool:
        # only gestures whose images were downloaded (when folder names tell which those are)
        return (gesture != NO_GESTURE or no_gesture) and (not matching or gesture in matching)

    entries: list[_Entry] = []
    bad = 0
    skipped: list[tuple[str, str]] = []
    located: list[tuple[_Entry, str]] = []
    not_downloaded: list[str] = []
    for pool, files in ann_files.items():
        for f in files:
            if not wanted(f.stem):
                continue
            got, nbad = _parse_file(f, pool)
            entries.extend(got)
            bad += nbad
            found = [(e, index.get(e.image_id)) for e in got]
            if got and not any(paths for _, paths in found):
                not_downloaded.append(f"{pool}/{f.stem}")  # a whole archive absent: not "missing"
                continue
            for e, paths in found:
                if not paths:
                    skipped.append((f"{pool}/{e.gesture}/{e.image_id}", "missing on disk"))
                    continue
                best = next((p for p in paths if _folder_gesture(p) == e.gesture), paths[0])
                located.append((e, best))
    if not located:
        raise DataError(f"the annotations in {base} match none of the {len(index)} images on disk "
                        f"(checked {len(entries)} annotated ids of "
                        f"{', '.join(sorted(g for g in json_gestures if wanted(g))) or 'no gesture'}); "
                        "the images and annotations are from different releases or the image "
                        "archives are not unpacked")

    # ---- splits by person
    pools: dict[str, list[tuple[_Entry, str]]] = defaultdict(list)
    for e, p in located:
        pools[e.pool].append((e, p))
    given = {k for k in ("val", "test") if pools.get(k)}
    train_pool = pools.get("train", []) + pools.get("trainval", [])
    carve = {k: f for k, f in (("val", val_fraction or 0.15), ("test", test_fraction))
             if k not in given and not (k == "test" and layout == "v2" and not test_fraction)}
    path_of = {id(e): p for e, p in located}
    split_entries: dict[str, list[_Entry]] = {k: [e for e, _ in pools[k]] for k in given}
    if carve:
        parts = _split_people([e for e, _ in train_pool], carve, seed)
        split_entries.update(parts)
    else:
        split_entries["train"] = [e for e, _ in train_pool]
    if not split_entries.get("train"):
        raise DataError(f"no training images under {base}: the train annotations match no "
                        "image on disk")

    # ---- samples (one per photo for full frames; one per box for hand crops)
    samples: dict[str, list[tuple[str, Box | None, str]]] = {}
    no_box = 0
    for split, es in split_entries.items():
        rows: list[tuple[str, Box | None, str]] = []
        for e in es:
            path = path_of[id(e)]
            if crop == "full":
                rows.append((path, None, e.gesture))
                continue
            if e.gesture != NO_GESTURE:
                box = _gesture_box(e)
                if box is None:
                    no_box += 1
                else:
                    rows.append((path, box, e.gesture))
            if no_gesture:
                rows.extend((path, b, NO_GESTURE) for b, lab in zip(e.boxes, e.labels, strict=True)
                            if lab == NO_GESTURE)
        samples[split] = rows
    if crop == "full" and no_gesture and not any(lab == NO_GESTURE for rows in samples.values()
                                                 for _, _, lab in rows):
        raise DataError("no_gesture with crop='full' needs photos without any gesture (HaGRIDv2's "
                        "no_gesture archive); in these photos each no_gesture box shares the frame "
                        "with a gesture hand, so use crop='hand' to train the no_gesture class")
    class_names = tuple(sorted({lab for rows in samples.values() for _, _, lab in rows},
                               key=natural_key))
    train_labels = {lab for _, _, lab in samples["train"]}
    lacking = [c for c in class_names if c not in train_labels]
    if lacking:
        raise DataError(f"class {lacking[0]!r} has no training image after the person split; "
                        "add more people's photos or lower val_fraction/test_fraction")

    stored = hand_train_size(image_size) if crop == "hand" and train_context else image_size
    specs = {}
    for split, rows in samples.items():
        is_train = split == "train" and crop == "hand" and train_context
        scale = HAND_TRAIN_SCALE if is_train else HAND_EVAL_SCALE
        specs[split] = SplitSpec([ImageItem(Path(p), b, scale) for p, b, _ in rows],
                                 stored if is_train else image_size)
    name = f"hagrid-{layout}"
    decoded = load_decoded(name, specs, crop_mode="full" if crop == "full" else "hand",
                           channels=channels, cache_dir=cache_dir, progress=progress,
                           params={"crop": crop, "no_gesture": no_gesture})
    splits: dict[str, Split] = {}
    for split, rows in samples.items():
        labels = np.asarray([class_names.index(lab) for _, _, lab in rows], dtype=np.int32)
        splits[split] = Split(decoded.images[split], labels[decoded.kept[split]])

    users = {k: len({e.user for e in es}) for k, es in split_entries.items()}
    notes: dict = {
        "source": str(base),
        "layout": layout,
        "split": ("person-disjoint by user_id: "
                  + (f"{'/'.join(k for k in ('val', 'test') if k in given)} as given in the annotations"
                     if given else "no split given")
                  + (f"; {'/'.join(k for k in carve if carve[k] > 0)} carved from train by a seeded "
                     f"split of people (seed {seed})" if carve else "")),
        "users": users,
        "not_downloaded": not_downloaded,
        "skipped": skipped_note(decoded.failures,
                                skipped + [("annotations", "malformed entry")] * bad),
        "gestures_without_images": sorted((json_gestures - matching) if matching else set(),
                                          key=natural_key),
        "cache": decoded.note(),
    }
    if crop == "hand":
        notes["hand_crop"] = {
            "eval_scale": HAND_EVAL_SCALE,
            "train_stored_scale": HAND_TRAIN_SCALE if train_context else HAND_EVAL_SCALE,
            "train_stored_size": stored,
            "image_size": image_size,
            "train_scale_range": list(HAND_TRAIN_SCALE_RANGE),
            "photos_without_gesture_box": no_box,
            "pipeline": (
                f"train images are {stored}px crops at {HAND_TRAIN_SCALE}x the box: each step, cut a "
                f"random box scale from them with rnn_jax.data.hagrid.random_context_crop(images, "
                f"{image_size}, rng) (or center_context_crop for the fixed {HAND_EVAL_SCALE}x view); "
                f"val/test are already {image_size}px at {HAND_EVAL_SCALE}x"
                if train_context else
                f"all splits are {image_size}px crops at {HAND_EVAL_SCALE}x the box (no scale augmentation stored)"),
        }
    notes["no_gesture"] = (
        "not included" if not no_gesture else
        "no_gesture boxes cropped as their own class (same photos and people as the gestures)"
        if crop == "hand" else
        "only photos with no gesture at all (HaGRIDv2 no_gesture archive); no_gesture boxes inside "
        "gesture photos are ignored because the frame's label is the gesture")
    test = splits.get("test")
    return Dataset(name=name, class_names=class_names, train=splits["train"], val=splits["val"],
                   test=test if test is not None and len(test) else None,
                   crop_mode="full" if crop == "full" else "hand",
                   notes=notes,
                   train_view=ContextCropView(image_size) if crop == "hand" and train_context else None)
