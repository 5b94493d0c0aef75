"""The image family on HaGRID parts: the very hands the landmark family uses, cut as square crops.

Each hand kept by :mod:`rnn_jax.data.hagrid.prepare` has a box (from the hand finder, a second
look or HaGRID's annotation); its crop is :func:`rnn_jax.preprocess.square_box` around that box,
the rule the live loop applies to the hand finder's box (:func:`rnn_jax.hands.hand_crop`), so
training and live see the same square. Crops from ``crops_train`` are tight: they are padded
with a replicated border (``CROP_PAD`` x the long side) before cutting, as when their hand
was found. Training crops keep extra context for random box-scale augmentation, as HaGRID's
annotated crops do (:data:`rnn_jax.data.hand_crops.HAND_TRAIN_SCALE`).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from rnn_jax.data.cache import ImageItem, SplitSpec
from rnn_jax.data.hagrid.layout import CROP_DIRS
from rnn_jax.data.hand_crops import (
    HAND_EVAL_SCALE,
    HAND_TRAIN_SCALE,
    ContextCropView,
    hand_train_size,
)
from rnn_jax.data.landmark_files import load_landmarks
from rnn_jax.data.stream import load_images
from rnn_jax.data.types import Dataset, Split
from rnn_jax.hands.crop import DETECTION_PAD
from rnn_jax.preprocess import crop_square, read_image, square_box

CROP_PAD = 0.6  # replicated border around a tight crop before cutting (enough for 2x context)


def decode_part_item(item: ImageItem, size: int, crop_mode: str, channels: int) -> np.ndarray:
    """One hand's square. Tight crops: boxes are normalised to the photo padded by DETECTION_PAD
    (where the hand was found); pad by CROP_PAD instead and move the box accordingly."""
    image = read_image(item.path, channels)
    box = item.box
    assert box is not None
    if item.path.parent.parent.name in CROP_DIRS:
        h, w = image.shape[:2]
        long_side = max(h, w)
        pad1, pad2 = round(long_side * DETECTION_PAD), round(long_side * CROP_PAD)
        w1, h1 = w + 2 * pad1, h + 2 * pad1
        image = cv2.copyMakeBorder(image, pad2, pad2, pad2, pad2, cv2.BORDER_REPLICATE)
        if image.ndim == 2:
            image = image[..., None]
        shift = pad2 - pad1
        w2, h2 = w + 2 * pad2, h + 2 * pad2
        box = ((box[0] * w1 + shift) / w2, (box[1] * h1 + shift) / h2, box[2] * w1 / w2, box[3] * h1 / h2)
    h, w = image.shape[:2]
    left, top, side = square_box(box, w, h, item.box_scale)
    return crop_square(image, left, top, side, size)


def parts_specs(root: str | Path, image_size: int, seed: int = 0, progress: bool = True):
    """``(folder, landmark sets, split specs)``: every hand the landmark preparation of ``root`` kept,
    as the items the image family decodes (training crops with context, val/test at ``image_size``)."""
    # imported here: grain's worker processes import this module for decode_part_item, and the
    # extraction (hand models, onnxruntime) is not needed there
    from rnn_jax.data.hagrid.prepare import prepare_landmarks

    folder = prepare_landmarks(root, seed=seed, no_gesture=True, progress=progress)
    base = Path(json.loads((folder / "parts.json").read_text())["root"])
    sets = {s: load_landmarks(folder / f"{s}.npz") for s in ("train", "val", "test") if (folder / f"{s}.npz").is_file()}
    boxes = {s: np.load(folder / f"boxes_{s}.npy") for s in sets}
    stored = hand_train_size(image_size)
    specs = {}
    for split, data in sets.items():
        scale = HAND_TRAIN_SCALE if split == "train" else HAND_EVAL_SCALE
        specs[split] = SplitSpec([ImageItem(base / str(p), tuple(float(v) for v in b), scale)
                                  for p, b in zip(data.sources, boxes[split], strict=True)],
                                 stored if split == "train" else image_size)
    return folder, sets, specs


def parts_image_dataset(root: str | Path, image_size: int, channels: int = 3, cache_dir: str | Path | None = None,
                        progress: bool = True, seed: int = 0, storage: str = "auto") -> Dataset:
    """Hand crops of the very hands the landmark family trains on (every part under ``root``,
    gestures + no_gesture), splits as the landmark preparation gives them (same seed, same hands).
    ``storage``: decoded cache, streamed or auto, as :func:`rnn_jax.data.stream.load_images`."""
    folder, sets, specs = parts_specs(root, image_size, seed, progress)
    stored = specs["train"].size
    decoded = load_images("hagrid-parts", specs, storage=storage, crop_mode="hand", channels=channels,
                          cache_dir=cache_dir, progress=progress,
                          params={"parts": folder.name, "crop_pad": CROP_PAD}, decoder=decode_part_item)
    splits = {s: Split(decoded.images[s], sets[s].labels[decoded.kept[s]].astype(np.int32)) for s in sets}
    names = sets["train"].class_names
    notes = {"source": str(root), "layout": "hagrid-parts", "parts": str(folder / "parts.json"),
             "split": "crops and unannotated photos (HaGRID train) -> train; annotated splits as given (user_id)",
             "hand_crop": {"eval_scale": HAND_EVAL_SCALE, "train_stored_scale": HAND_TRAIN_SCALE,
                           "train_stored_size": stored, "image_size": image_size,
                           "boxes": "hand finder / second look (crops, photos), annotation (val, test)"},
             "images": decoded.note(), **({"cache": decoded.cache} if decoded.cache is not None else {})}
    return Dataset(name="hagrid-parts", class_names=names, train=splits["train"], val=splits["val"],
                   test=splits.get("test"), crop_mode="hand", notes=notes, train_view=ContextCropView(image_size))
