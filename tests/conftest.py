"""Shared fixtures: tiny made-up data sets and the location of ../shared/data."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# Python source that makes the training libraries (and onnx) unimportable, then puts the checkout
# first on sys.path: prefix it to a `python -c` program to check that a base install suffices.
BLOCK_TRAINING_IMPORTS = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('onnx', 'jax', 'jaxlib', 'flax', 'tensorflow'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(REPO)!r})
"""


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it lives beside the project, never in it)")
    return path


def gesture_frame(path: Path, meta: dict, side: int = 640) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """An annotated HaGRID photo letterboxed into a ``side`` x ``side`` frame (RGB), and its gesture
    box in that frame as (x0, y0, x1, y1)."""
    from rnn_jax.preprocess import letterbox, read_image

    image = read_image(path, 3)
    h, w = image.shape[:2]
    frame, scale = letterbox(image, side), side / max(h, w)
    ox, oy = (side - round(w * scale)) // 2, (side - round(h * scale)) // 2
    k = next(i for i, lab in enumerate(meta["labels"]) if lab != "no_gesture")
    bx, by, bw, bh = meta["boxes"][k]
    x0, y0 = bx * w * scale + ox, by * h * scale + oy
    return frame, (x0, y0, x0 + bw * w * scale, y0 + bh * h * scale)


@pytest.fixture(scope="session")
def hand_models() -> Path:
    """The ONNX hand models, built once per machine by tools/build_hand_models.py into the default
    folder ($RNN_JAX_HANDS or ~/.cache/rnn-jax/hands; a finished build is reused).

    The dev install carries the converter and TFLite ([hands-build]), so a build that fails (no
    download, a conversion error, ONNX outputs that disagree with TFLite) FAILS every test that
    needs the models: a dev tool that cannot build is a bug, not a reason to skip."""
    import importlib.util

    from rnn_jax.hands.models import default_model_dir

    spec = importlib.util.spec_from_file_location("build_hand_models", REPO / "tools" / "build_hand_models.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = default_model_dir()
    try:
        tool.build(out, allow_install=False)
    except tool.BuildError as exc:
        pytest.fail(f"the dev install could not build the hand models: {exc} "
                    "(python tools/build_hand_models.py; --wheel FILE without network)", pytrace=False)
    return out


def make_blobs_dataset(n_train: int = 512, n_val: int = 128, size: int = 8, channels: int = 1,
                       classes: int = 4, seed: int = 0):
    """Learnable toy images: each class is a bright square in its own quadrant, plus noise."""
    from rnn_jax.data.types import Dataset, Split

    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        labels = rng.integers(0, classes, n).astype(np.int32)
        images = rng.integers(0, 60, (n, size, size, channels)).astype(np.uint8)
        half = size // 2
        for i, label in enumerate(labels):
            y, x = divmod(int(label) % 4, 2)
            images[i, y * half : (y + 1) * half, x * half : (x + 1) * half] += 150
        return Split(images, labels)

    return Dataset("blobs", tuple(f"c{i}" for i in range(classes)), split(n_train), split(n_val), split(n_val))


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray, test_images: np.ndarray,
              test_labels: np.ndarray) -> Path:
    """Write the four IDX files (gzip) the way the originals are laid out."""
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, array: np.ndarray) -> None:
        header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        with gzip.open(folder / f"{name}.gz", "wb") as f:
            f.write(header + array.astype(np.uint8).tobytes())

    dump("train-images-idx3-ubyte", images)
    dump("train-labels-idx1-ubyte", labels)
    dump("t10k-images-idx3-ubyte", test_images)
    dump("t10k-labels-idx1-ubyte", test_labels)
    return folder


@pytest.fixture
def blobs():
    return make_blobs_dataset()
