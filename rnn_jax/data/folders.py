"""Plain class folders (``<root>/<split>/<class>/*.jpg`` or ``<root>/<class>/*.jpg``) as a Dataset.

This is what most users build by hand, and what HaGRID loaders fall back to when there
are no annotations. Decoding goes through the shared cache (:mod:`rnn_jax.data.cache`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_jax.data.cache import ImageItem, SplitSpec, load_decoded
from rnn_jax.data.types import Dataset, Split
from rnn_jax.errors import DataError
from rnn_jax.preprocess import CROP_MODES

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SPLIT_ALIASES = {"train": ("train", "training"), "val": ("val", "valid", "validation"),
                 "test": ("test", "testing")}
MAX_EXAMPLES = 5  # failure examples kept in Dataset.notes
_REASONS = (("missing", "missing"), ("truncated", "truncated"), ("bad-annotation", "malformed"))


def natural_key(text: str) -> list:
    """Sort key so that "2" < "10" and "IMG_9" < "IMG_10" (case-insensitive)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (any extension case), naturally sorted."""
    return sorted((p for p in folder.iterdir() if p.is_file() and is_image(p)),
                  key=lambda p: natural_key(p.name))


def _subdirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
                  key=lambda p: natural_key(p.name))


def _find_split_dir(root: Path, split: str) -> Path | None:
    for alias in SPLIT_ALIASES[split]:
        for candidate in (root / alias, root / alias.upper(), root / alias.capitalize()):
            if candidate.is_dir():
                return candidate
    return None


def _scan_classes(folder: Path) -> dict[str, list[Path]]:
    """class name -> images, refusing empty class folders with a fixable message."""
    classes = {d.name: list_images(d) for d in _subdirs(folder)}
    if not classes:
        loose = list_images(folder)
        hint = (f" It holds {len(loose)} images directly: put them in one sub-folder per class."
                if loose else "")
        raise DataError(f"{folder} has no class folders.{hint} Expected <root>/<class>/*.jpg or "
                        "<root>/train/<class>/*.jpg.")
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise DataError(f"class folder {folder / empty[0]} has no images "
                        f"({', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder"
                        + (f" (also empty: {', '.join(empty[1:])})" if len(empty) > 1 else ""))
    return classes


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Seeded per-class split of example indices into len(fractions)+1 parts (the first is the rest).

    Every class gets at least one example in each non-zero fraction when it has enough.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for j, frac in enumerate(fractions):
            k = int(round(len(idx) * frac))
            if frac > 0 and k == 0 and len(idx) - start > 1:
                k = 1
            parts[j + 1].extend(idx[start : start + k].tolist())
            start += k
        parts[0].extend(idx[start:].tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def skipped_note(failures: Sequence[tuple[str, str]], extra: Sequence[tuple[str, str]] = ()) -> dict:
    """The ``notes["skipped"]`` entry: how many files were left out, why, and a few examples."""
    allf = list(extra) + list(failures)
    by_reason: dict[str, int] = {}
    for _, reason in allf:
        kind = next((k for k, prefix in _REASONS if reason.startswith(prefix)), "unreadable")
        by_reason[kind] = by_reason.get(kind, 0) + 1
    return {"count": len(allf), "by_reason": by_reason,
            "examples": [f"{path}: {reason}" for path, reason in allf[:MAX_EXAMPLES]]}


def load_class_folders(root: str | Path, image_size: int, crop_mode: str = "full",
                       channels: int = 3, cache_dir: str | Path | None = None,
                       val_fraction: float = 0.15, seed: int = 0, progress: bool = True,
                       test_fraction: float = 0.0, find_hands: bool = False,
                       train_context: bool = True) -> Dataset:
    """Load ``<root>/{train,val,test}/<class>/*`` or ``<root>/<class>/*`` as a Dataset.

    With ``train/`` and ``val/`` the given split is kept (it may be person-disjoint; a random
    re-split would leak). With ``train/`` and ``test/`` only, ``val_fraction`` of train is
    carved out, stratified and seeded. With one folder per class, a seeded stratified
    train/val(/test when ``test_fraction`` > 0) split is made. Corrupt images are skipped and
    counted in ``notes["skipped"]``.

    ``find_hands`` (with ``crop_mode="hand"``): find each photo's hand once with
    :mod:`rnn_jax.hands` and crop it with the live loop's rule; photos without a hand are
    left out and counted in ``notes["hand_boxes"]``. ``train_context`` then stores training
    crops with extra context for box-scale augmentation, as HaGRID's loader does.
    """
    root = Path(root).expanduser().resolve()  # absolute: one cache slot whatever the cwd
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; check the path "
                        "(expected <root>/<class>/*.jpg or <root>/train/<class>/*.jpg)")
    if crop_mode not in CROP_MODES:
        raise DataError(f"unknown crop mode {crop_mode!r}; use one of {', '.join(CROP_MODES)}")
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must be "
                        "in [0, 1) and leave images for training")
    split_dirs = {s: _find_split_dir(root, s) for s in SPLIT_ALIASES}
    notes: dict = {"source": str(root)}

    if split_dirs["train"] is not None:
        scanned = {s: _scan_classes(d) for s, d in split_dirs.items() if d is not None}
        class_names = tuple(sorted(scanned["train"], key=natural_key))
        for s, classes in scanned.items():
            if set(classes) != set(class_names):
                missing = sorted(set(class_names) - set(classes), key=natural_key)
                extra = sorted(set(classes) - set(class_names), key=natural_key)
                what = "; ".join(filter(None, [
                    f"missing in {s}: {', '.join(missing)}" if missing else "",
                    f"only in {s}: {', '.join(extra)}" if extra else ""]))
                raise DataError(f"the class folders of {split_dirs[s]} differ from "
                                f"{split_dirs['train']} ({what}); use the same class folder "
                                "names in every split")
        files = {s: [(p, class_names.index(c)) for c in class_names for p in classes[c]]
                 for s, classes in scanned.items()}
        if "val" not in files:
            train_labels = np.asarray([lab for _, lab in files["train"]])
            train_idx, val_idx = stratified_split(train_labels, [val_fraction or 0.15], seed)
            files["val"] = [files["train"][i] for i in val_idx]
            files["train"] = [files["train"][i] for i in train_idx]
            notes["split"] = (f"val carved from {split_dirs['train'].name}/ ({val_fraction or 0.15:.0%}, "
                              f"stratified, seed {seed}); photos of one person may be in both")
            notes["layout"] = "folders/train-test" if "test" in files else "folders/train"
        else:
            notes["split"] = "the train/val" + ("/test" if "test" in files else "") + \
                " folders as given (kept: a re-split could put one person in two splits)"
            notes["layout"] = "folders/train-val" + ("-test" if "test" in files else "")
    else:
        classes = _scan_classes(root)
        class_names = tuple(classes)
        everything = [(p, i) for i, c in enumerate(class_names) for p in classes[c]]
        labels = np.asarray([lab for _, lab in everything])
        fracs = [val_fraction or 0.15] + ([test_fraction] if test_fraction > 0 else [])
        parts = stratified_split(labels, fracs, seed)
        files = {"train": [everything[i] for i in parts[0]], "val": [everything[i] for i in parts[1]]}
        if test_fraction > 0:
            files["test"] = [everything[i] for i in parts[2]]
        notes["layout"] = "folders/per-class"
        notes["split"] = (f"seeded ({seed}) stratified split of each class folder by photo; "
                          "photos of one person may be in several splits")

    train_view = None
    if find_hands and crop_mode == "hand":
        files, specs, decode_kw, train_view = _hand_specs(root, files, image_size, cache_dir, progress,
                                                          train_context, notes)
    else:
        specs = {s: SplitSpec([ImageItem(p) for p, _ in pairs], image_size) for s, pairs in files.items()}
        decode_kw = {}
    decoded = load_decoded(f"folders-{root.name}", specs, crop_mode=crop_mode, channels=channels,
                           cache_dir=cache_dir, progress=progress, **decode_kw)
    splits = {}
    for s, pairs in files.items():
        labels = np.asarray([lab for _, lab in pairs], dtype=np.int32)[decoded.kept[s]]
        splits[s] = Split(decoded.images[s], labels)
    empty = [class_names[c] for c in range(len(class_names)) if not np.any(splits["train"].labels == c)]
    if empty:
        raise DataError(f"no readable training image for class {empty[0]!r} in {root} "
                        f"({len(decoded.failures)} images could not be decoded); "
                        "replace the broken files")
    notes["skipped"] = skipped_note(decoded.failures)
    notes["cache"] = decoded.note()
    return Dataset(name=root.name, class_names=class_names, train=splits["train"],
                   val=splits["val"], test=splits.get("test"), crop_mode=crop_mode, notes=notes,
                   train_view=train_view)


def _hand_specs(root: Path, files: dict, image_size: int, cache_dir, progress: bool,
                train_context: bool, notes: dict):
    """Boxes from the hand finder (found once, cached) -> split specs for hand crops."""
    # lazy: these pull in rnn_jax.hands (onnxruntime), which plain class folders never need
    from rnn_jax.data.hand_boxes import DETECTION_PAD, decode_padded_hand, find_boxes
    from rnn_jax.data.hand_crops import (
        HAND_EVAL_SCALE,
        HAND_TRAIN_SCALE,
        ContextCropView,
        hand_train_size,
    )

    order = [s for s in files]
    paths = [p for s in order for p, _ in files[s]]
    boxes, note = find_boxes(f"folders-{root.name}", paths, cache_dir=cache_dir, progress=progress)
    it = iter(boxes)
    kept: dict = {}
    specs = {}
    per_split = {}
    for s in order:
        pairs = [(p, lab, next(it)) for p, lab in files[s]]
        with_box = [(p, lab, b) for p, lab, b in pairs if b is not None]
        per_split[s] = {"photos": len(pairs), "no_hand": len(pairs) - len(with_box)}
        kept[s] = [(p, lab) for p, lab, _ in with_box]
        is_train = s == "train" and train_context
        scale = HAND_TRAIN_SCALE if is_train else HAND_EVAL_SCALE
        size = hand_train_size(image_size) if is_train else image_size
        specs[s] = SplitSpec([ImageItem(p, b, scale) for p, _, b in with_box], size)
    if not kept["train"]:
        raise DataError(f"the hand finder found no hand in any training photo of {root}")
    note["per_split"] = per_split
    notes["hand_boxes"] = note
    notes["hand_crop"] = {"boxes": "found by rnn_jax.hands (palm + landmarks) on photos padded "
                                   f"{DETECTION_PAD:.0%} per side", "eval_scale": HAND_EVAL_SCALE,
                          "train_stored_scale": HAND_TRAIN_SCALE if train_context else HAND_EVAL_SCALE}
    decode_kw = {"decoder": decode_padded_hand, "params": {"hand_boxes": "found", "pad": DETECTION_PAD}}
    view = ContextCropView(image_size) if train_context else None
    return kept, specs, decode_kw, view
