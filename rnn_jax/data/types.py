"""In-memory data set types shared by every source (numpy only)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rnn_jax.errors import DataError


@dataclass(frozen=True)
class Split:
    """One split: uint8 NHWC images (array or memmap) and int32 labels."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise DataError(f"images must be NHWC, got shape {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, n: int | None, seed: int = 0) -> Split:
        """A class-stratified-by-chance subset of n examples (all when n is None or too big)."""
        if n is None or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).permutation(len(self))[:n])
        return Split(np.asarray(self.images[idx]), np.asarray(self.labels[idx]))


class TrainView(Protocol):
    """How stored training images become model inputs when they are kept larger than the input
    (e.g. hand crops stored with extra context so each step can draw a new box scale)."""

    def random(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...

    def clean(self, images: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Dataset:
    """A labelled image data set with train/val(/test) splits, ready for the pipeline."""

    name: str
    class_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split | None = None
    crop_mode: str = "stretch"
    notes: dict = field(default_factory=dict)  # e.g. skipped/corrupt file counts, demo-data notice
    train_view: TrainView | None = None  # None: training images already have the input shape

    def __post_init__(self) -> None:
        if not self.class_names:
            raise DataError(f"data set {self.name!r} has no classes")
        if len(self.train) == 0:
            raise DataError(f"data set {self.name!r} has no training images")
        if len(self.val) == 0:
            raise DataError(f"data set {self.name!r} has no validation images")
        if self.train_view is None and self.train.images.shape[1:] != self.val.images.shape[1:]:
            raise DataError(f"train images are {self.train.images.shape[1:]} but val images are "
                            f"{self.val.images.shape[1:]}; every split must have the model's input shape")
        n = len(self.class_names)
        for split_name, split in self.splits().items():
            if len(split) and (split.labels.min() < 0 or split.labels.max() >= n):
                raise DataError(f"{split_name} labels fall outside 0..{n - 1}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The model's input shape (validation images always have it)."""
        return tuple(self.val.images.shape[1:])  # type: ignore[return-value]

    def clean_train_images(self, images: np.ndarray) -> np.ndarray:
        """Training images as the model sees them without augmentation."""
        return images if self.train_view is None else self.train_view.clean(images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def splits(self) -> dict[str, Split]:
        out = {"train": self.train, "val": self.val}
        if self.test is not None:
            out["test"] = self.test
        return out

    def fingerprint(self) -> str:
        """A short hash that changes when the data changes (used to refuse a mismatched --resume)."""
        h = hashlib.sha1()
        h.update(repr((self.name, self.class_names, self.crop_mode)).encode())
        for split_name, split in self.splits().items():
            h.update(split_name.encode())
            h.update(repr(split.images.shape).encode())
            h.update(np.ascontiguousarray(split.labels).tobytes())
            step = max(1, len(split) // 64)
            h.update(np.ascontiguousarray(split.images[::step]).tobytes())
        return h.hexdigest()[:16]
