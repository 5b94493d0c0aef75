"""Batch-level augmentation in numpy (vectorised where it matters; runs inside grain)."""

from __future__ import annotations

import numpy as np

from rnn_jax.config import AUGMENTATIONS


def random_crop_flip(images: np.ndarray, rng: np.random.Generator, pad: int, flip: bool) -> np.ndarray:
    """Pad-and-crop translation plus optional horizontal flip (a left hand is still the gesture)."""
    b, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    ys, xs = rng.integers(0, 2 * pad + 1, size=b), rng.integers(0, 2 * pad + 1, size=b)
    out = np.empty_like(images)
    for i in range(b):
        out[i] = padded[i, ys[i] : ys[i] + h, xs[i] : xs[i] + w]
    if flip:
        mask = rng.random(b) < 0.5
        out[mask] = out[mask, :, ::-1]
    return out


def colour_jitter(images: np.ndarray, rng: np.random.Generator, strength: float = 0.3) -> np.ndarray:
    """Random brightness and contrast per image (cameras and lighting vary)."""
    b = images.shape[0]
    x = images.astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(1 - strength, 1 + strength, size=(b, 1, 1, 1)).astype(np.float32)
    brightness = rng.uniform(-strength, strength, size=(b, 1, 1, 1)).astype(np.float32) * 255 * 0.5
    return np.clip((x - mean) * contrast + mean + brightness, 0, 255).astype(np.uint8)


def cutout(images: np.ndarray, rng: np.random.Generator, fraction: float = 0.25) -> np.ndarray:
    """Blank one random square per image (forces the use of more than one cue)."""
    b, h, w, _ = images.shape
    side = max(1, int(min(h, w) * fraction))
    ys, xs = rng.integers(0, h - side + 1, size=b), rng.integers(0, w - side + 1, size=b)
    out = images.copy()
    for i in range(b):
        out[i, ys[i] : ys[i] + side, xs[i] : xs[i] + side] = 0
    return out


def augment_batch(images: np.ndarray, rng: np.random.Generator, level: str, flip: bool = True) -> np.ndarray:
    """``none`` | ``basic`` (shift + flip) | ``strong`` (noisy student: + colour + cutout)."""
    if level not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {level!r}")
    if level == "none":
        return images
    pad = max(1, images.shape[1] // 8)
    out = random_crop_flip(images, rng, pad, flip)
    if level == "strong":
        out = cutout(colour_jitter(out, rng), rng)
    return out
