"""Standard sets (mnist, fashion_mnist, cifar10) through tensorflow-datasets' random-access sources.

tfds imports without TensorFlow and reads prepared ``array_record`` data through
``tfds.data_source``; preparing from scratch needs a download (and, for most builders,
TensorFlow). Where that is impossible the user gets one clear sentence and an alternative.
"""

from __future__ import annotations

import numpy as np

from rnn_jax.data.types import Dataset, Split
from rnn_jax.errors import DataError

SUPPORTED = ("mnist", "fashion_mnist", "cifar10")


def _to_arrays(source) -> Split:
    n = len(source)
    if n == 0:
        raise DataError("the tensorflow-datasets split is empty")
    first = source[0]
    images = np.empty((n, *np.asarray(first["image"]).shape), np.uint8)
    labels = np.empty((n,), np.int32)
    for i in range(n):
        example = source[i]
        images[i] = example["image"]
        labels[i] = example["label"]
    return Split(images, labels)


def load_tfds(name: str, data_dir: str | None = None, seed: int = 0, val_size: int = 5000,
              download: bool = True) -> Dataset:
    """Train/val/test arrays for a tfds image-classification set; val is a seeded hold-out of train."""
    if name not in SUPPORTED:
        raise DataError(f"tfds data set {name!r} is not wired up; supported: {SUPPORTED}")
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError("tensorflow-datasets is not installed: `pip install 'rnn-jax[tfds]'`, "
                        "or pass --data with a local copy of the data") from None
    try:
        train_source = tfds.data_source(name, split="train", data_dir=data_dir, download=download)
        test_source = tfds.data_source(name, split="test", data_dir=data_dir, download=download)
        class_names = tuple(tfds.builder(name, data_dir=data_dir).info.features["label"].names)
    except Exception as exc:  # noqa: BLE001 - tfds raises many types; all mean "not available"
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"tensorflow-datasets could not provide {name!r} ({reason}). It must be prepared in array_record "
            f"format under --tfds-dir (or downloadable, which needs internet and usually TensorFlow). "
            f"Alternatively pass --data with the original files.") from None
    full = _to_arrays(train_source)
    val_size = min(val_size, len(full) // 5)
    order = np.random.default_rng(seed).permutation(len(full))
    val_idx, train_idx = np.sort(order[:val_size]), np.sort(order[val_size:])
    return Dataset(
        name=name,
        class_names=class_names,
        train=Split(full.images[train_idx], full.labels[train_idx]),
        val=Split(full.images[val_idx], full.labels[val_idx]),
        test=_to_arrays(test_source),
        crop_mode="stretch",
        notes={"source": f"tensorflow-datasets:{name}", "val": f"{val_size} images held out of train (seed {seed})"},
    )
