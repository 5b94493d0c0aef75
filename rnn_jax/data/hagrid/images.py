"""HaGRID (v1, v2, the 30k/384p sample, or plain class folders) as a Dataset of full frames or hand crops.

The layouts are resolved by :mod:`rnn_jax.data.hagrid.layout` and the annotation schema read by
:mod:`rnn_jax.data.hagrid.annotations`; plain class folders go to
:func:`rnn_jax.data.folders.load_class_folders`. Splits are by ``user_id``: the given split
when there is one, otherwise the one seeded person-split rule
(:func:`rnn_jax.data.splits.split_people`), so no person is in two splits.

Hand crops: evaluation uses a square of 1.5x the box's longer side (``preprocess.square_box``)
stored at exactly ``image_size``. Training crops are stored with more context (2.0x the
box, at ``hand_train_size(image_size)`` px) so the training pipeline can draw a random box
scale in ``HAND_TRAIN_SCALE_RANGE`` from a fixed cache: the rule is
:mod:`rnn_jax.data.hand_crops` and ``Dataset.notes["hand_crop"]``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from rnn_jax.data.cache import ImageItem, SplitSpec
from rnn_jax.data.folders import load_class_folders, natural_key, skipped_note
from rnn_jax.data.hagrid.annotations import (
    NO_GESTURE,
    Box,
    HagridEntry,
    folder_gesture,
    gesture_box,
    index_images,
    parse_file,
)
from rnn_jax.data.hagrid.layout import resolve_layout
from rnn_jax.data.hand_crops import (
    HAND_EVAL_SCALE,
    HAND_TRAIN_SCALE,
    HAND_TRAIN_SCALE_RANGE,
    ContextCropView,
    hand_train_size,
)
from rnn_jax.data.hand_crops import (
    random_context_crop as random_context_crop,  # named in notes["hand_crop"]
)
from rnn_jax.data.splits import split_people
from rnn_jax.data.stream import load_images
from rnn_jax.data.types import Dataset, Split
from rnn_jax.errors import DataError


def _split_people(entries: list[HagridEntry], fractions: dict[str, float], seed: int) -> dict[str, list[HagridEntry]]:
    """Seeded split of a pool into "train" + the named parts by the one person-split rule (by user_id);
    each part lists its people's entries person by person, in the order the rule drew them."""
    by_user: dict[str, list[HagridEntry]] = defaultdict(list)
    for e in entries:
        by_user[e.user].append(e)
    people = split_people([e.user for e in entries], fractions, seed, what="people (user_id) in the annotations")
    return {part: [e for user in users for e in by_user[user]] for part, users in people.items()}


# ----------------------------------------------------------------------------- loader


def load_hagrid(root: str | Path, image_size: int, crop: str = "full", no_gesture: bool = False,
                channels: int = 3, cache_dir: str | Path | None = None, seed: int = 0,
                val_fraction: float = 0.15, test_fraction: float = 0.15, progress: bool = True,
                train_context: bool = True, storage: str = "auto") -> Dataset:
    """Load any HaGRID layout under ``root`` as a Dataset of full frames or hand crops.

    ``crop="full"`` letterboxes whole photos; ``crop="hand"`` crops a square around the
    gesture box (the two-hand ``united_bbox`` for two-handed v2 gestures). ``no_gesture``
    adds the ``no_gesture`` class: with hand crops, every box labelled no_gesture (the free
    second hand, and HaGRIDv2's own no_gesture photos); with full frames only photos that
    contain no gesture at all (HaGRIDv2's no_gesture archive), because a no_gesture box
    shares its photo with a gesture hand. ``train_context`` stores training hand crops with
    extra context for random box-scale augmentation (see the module docstring). ``storage``:
    ``cache`` decodes every photo once into the decoded cache, ``stream`` decodes them while
    training in grain worker processes, ``auto`` picks (:func:`rnn_jax.data.stream.choose_storage`).
    """
    if crop not in ("full", "hand"):
        raise DataError(f"crop must be 'full' or 'hand', got {crop!r}")
    if image_size < 4:
        raise DataError(f"image_size {image_size} is too small")
    resolved = resolve_layout(root)
    layout, base = resolved.kind, resolved.root
    if layout == "parts":
        raise DataError(f"{base} holds HaGRID parts (hand crops, unannotated photos): read it with "
                        "rnn_jax.data.hagrid.parts_images.parts_image_dataset (crop='hand')")
    if layout == "folders":
        ds = load_class_folders(base, image_size, crop_mode=crop, channels=channels,
                                cache_dir=cache_dir, val_fraction=val_fraction, seed=seed,
                                progress=progress, test_fraction=test_fraction,
                                find_hands=crop == "hand", train_context=train_context)
        ds.notes["hagrid"] = ("plain class folders: no boxes or user_id, so crop='hand' finds each "
                              "photo's hand once with rnn_jax.hands (photos without one are left out) "
                              "and no_gesture is just a folder name")
        return ds

    ann_files = resolved.pools
    index = index_images(base, resolved.annotation_dirs)
    if not index:
        raise DataError(f"no images found under {base} (annotations are there); unpack the "
                        "gesture archives next to the annotations")
    folder_gestures = {folder_gesture(paths[0]) for paths in index.values()}
    json_gestures = {f.stem for files in ann_files.values() for f in files}
    matching = json_gestures & folder_gestures

    def wanted(gesture: str) -> bool:
        # only gestures whose images were downloaded (when folder names tell which those are)
        return (gesture != NO_GESTURE or no_gesture) and (not matching or gesture in matching)

    entries: list[HagridEntry] = []
    bad = 0
    skipped: list[tuple[str, str]] = []
    located: list[tuple[HagridEntry, str]] = []
    not_downloaded: list[str] = []
    for pool, files in ann_files.items():
        for f in files:
            if not wanted(f.stem):
                continue
            got, nbad = parse_file(f, pool)
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
                best = next((p for p in paths if folder_gesture(p) == e.gesture), paths[0])
                located.append((e, best))
    if not located:
        raise DataError(f"the annotations in {base} match none of the {len(index)} images on disk "
                        f"(checked {len(entries)} annotated ids of "
                        f"{', '.join(sorted(g for g in json_gestures if wanted(g))) or 'no gesture'}); "
                        "the images and annotations are from different releases or the image "
                        "archives are not unpacked")

    # ---- splits by person
    pools: dict[str, list[tuple[HagridEntry, str]]] = defaultdict(list)
    for e, p in located:
        pools[e.pool].append((e, p))
    given = {k for k in ("val", "test") if pools.get(k)}
    train_pool = pools.get("train", []) + pools.get("trainval", [])
    carve = {k: f for k, f in (("val", val_fraction or 0.15), ("test", test_fraction))
             if k not in given and not (k == "test" and layout == "v2" and not test_fraction)}
    path_of = {id(e): p for e, p in located}
    split_entries: dict[str, list[HagridEntry]] = {k: [e for e, _ in pools[k]] for k in given}
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
                box = gesture_box(e)
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
    decoded = load_images(name, specs, storage=storage, crop_mode="full" if crop == "full" else "hand",
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
        "images": decoded.note(),
    }
    if decoded.cache is not None:
        notes["cache"] = decoded.cache
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
