"""One entry point for every data source, described by a serialisable DataSpec.

The spec is stored in lineage.json, so tools (evaluate, export) can rebuild the same data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rnn_jax.data.types import Dataset
from rnn_jax.errors import ConfigError
from rnn_jax.presets import default_image_size

KINDS = ("builtin", "idx", "folders", "hagrid", "tfds", "landmarks")


@dataclass(frozen=True)
class DataSpec:
    kind: str
    path: str | None = None
    name: str = ""
    image_size: int | None = None  # None: rnn_jax.presets.default_image_size(kind)
    crop: str = "full"
    channels: int = 3
    no_gesture: bool = False
    seed: int = 0
    mirror_left: bool = True  # landmarks: mirror left hands to right ones (rnn_jax.hands.features)
    window: int = 0  # landmarks: > 0 = windows of this many consecutive video frames (BPTT)
    image_storage: str = "auto"  # hagrid images: cache | stream | auto (rnn_jax.data.stream.choose_storage)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown data kind {self.kind!r}; choose from {KINDS}")
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            raise ConfigError(f"--image-size must be between 8 and 1024, got {self.image_size}")
        if self.crop not in ("full", "hand"):
            raise ConfigError(f"--crop must be 'full' or 'hand', got {self.crop!r}")
        if self.image_storage not in ("auto", "cache", "stream"):
            raise ConfigError(f"--image-storage must be auto, cache or stream, got {self.image_storage!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_dataset(spec: DataSpec, progress: bool = True) -> Dataset:
    """Build the Dataset a spec describes (imports each source only when it is used)."""
    if spec.kind == "idx":
        from rnn_jax.data.idx import load_idx_dataset

        return load_idx_dataset(spec.path, name=spec.name or "fashion_mnist", seed=spec.seed)
    if spec.kind == "tfds":
        from rnn_jax.data.tfds_source import load_tfds

        return load_tfds(spec.name, data_dir=spec.path, seed=spec.seed)
    if spec.kind == "landmarks":
        from rnn_jax.data.landmark_dataset import landmark_dataset

        return landmark_dataset(spec.path, seed=spec.seed, mirror_left=spec.mirror_left, window=spec.window)
    if spec.kind == "builtin":
        from rnn_jax.data.builtin import make_builtin_gestures

        return make_builtin_gestures(image_size=spec.image_size or default_image_size(spec.kind), seed=spec.seed)
    if spec.kind == "folders":
        from rnn_jax.data.folders import load_class_folders

        return load_class_folders(spec.path, spec.image_size or default_image_size(spec.kind), crop_mode=spec.crop if spec.crop != "hand" else "full",
                                  channels=spec.channels, seed=spec.seed, progress=progress)
    from rnn_jax.data.hagrid.layout import resolve_layout

    if resolve_layout(spec.path).kind == "parts":  # crops / unannotated photos: the landmark family's hands
        from rnn_jax.data.hagrid.parts_images import parts_image_dataset

        return parts_image_dataset(spec.path, spec.image_size or default_image_size(spec.kind), channels=spec.channels, progress=progress,
                                   seed=spec.seed, storage=spec.image_storage)
    from rnn_jax.data.hagrid.images import load_hagrid

    return load_hagrid(spec.path, spec.image_size or default_image_size(spec.kind), crop=spec.crop, no_gesture=spec.no_gesture,
                       channels=spec.channels, seed=spec.seed, progress=progress, storage=spec.image_storage)
