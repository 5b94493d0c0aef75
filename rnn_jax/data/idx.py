"""MNIST / Fashion-MNIST from the four original IDX files (gzip or raw)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from rnn_jax.data.types import Dataset, Split
from rnn_jax.errors import DataError

FASHION_MNIST_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                         "sneaker", "bag", "ankle boot")
MNIST_CLASSES = tuple(str(i) for i in range(10))
_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
          "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (the format's magic number gives dtype and rank)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    rank = data[3]
    dims = struct.unpack(f">{rank}I", data[4 : 4 + 4 * rank])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(dims))} bytes, found {body.size}")
    return body.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"{root} has no {stem}[.gz]; expected the four original IDX files there")


def load_idx_dataset(root: str | Path, name: str = "fashion_mnist", val_size: int = 5000, seed: int = 0) -> Dataset:
    """Train/val/test from IDX files: val is a seeded hold-out of the 60k training images."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    arrays = {key: read_idx(_find(root, stem)) for key, stem in _FILES.items()}
    train_images = arrays["train_images"][..., None]
    train_labels = arrays["train_labels"].astype(np.int32)
    if len(train_images) != len(train_labels):
        raise DataError(f"{root}: {len(train_images)} training images but {len(train_labels)} labels")
    val_size = min(val_size, len(train_labels) // 5)
    order = np.random.default_rng(seed).permutation(len(train_labels))
    val_idx, train_idx = np.sort(order[:val_size]), np.sort(order[val_size:])
    classes = FASHION_MNIST_CLASSES if "fashion" in name else MNIST_CLASSES
    return Dataset(
        name=name,
        class_names=classes,
        train=Split(train_images[train_idx], train_labels[train_idx]),
        val=Split(train_images[val_idx], train_labels[val_idx]),
        test=Split(arrays["test_images"][..., None], arrays["test_labels"].astype(np.int32)),
        crop_mode="stretch",
        notes={"source": str(root), "val": f"{val_size} images held out of the training set (seed {seed})"},
    )
