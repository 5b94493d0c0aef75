"""Mixup and CutMix on a batch: images and targets mixed with one permutation and one weight.

Applied after augmentation, to every generation alike (so generation 0 with mixing is the
label-only mixup baseline). The same ``Mix`` is applied to the teacher: a ``consistent``
teacher runs on the mixed images (function matching, Beyer et al. 2022); cached teacher
probabilities are mixed with the same weight.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Mix(NamedTuple):
    """Row ``i`` of the batch became ``lam * row_i + (1 - lam) * row_perm[i]``."""

    perm: np.ndarray
    lam: float


def draw_mix(batch_size: int, rng: np.random.Generator, mixup: float, cutmix: float) -> tuple[str, Mix] | None:
    """Pick mixup or CutMix (half the batches each when both are on) and its weight ~ Beta(a, a)."""
    kinds = [(name, a) for name, a in (("mixup", mixup), ("cutmix", cutmix)) if a > 0]
    if not kinds:
        return None
    name, a = kinds[int(rng.integers(len(kinds)))]
    return name, Mix(rng.permutation(batch_size), float(rng.beta(a, a)))


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A box covering about ``1 - lam`` of the image, centred anywhere (clipped at the borders)."""
    cut = np.sqrt(1.0 - lam)
    ch, cw = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    return (max(cy - ch // 2, 0), min(cy + ch // 2, height), max(cx - cw // 2, 0), min(cx + cw // 2, width))


def mix_batch(images: np.ndarray, labels: np.ndarray, num_classes: int, rng: np.random.Generator,
              mixup: float = 0.0, cutmix: float = 0.0) -> tuple[np.ndarray, np.ndarray, Mix | None]:
    """Return (images as float32, target distributions [B, C], the Mix applied or None).

    CutMix's weight is the pasted area actually kept after clipping, so targets match pixels.
    """
    targets = np.eye(num_classes, dtype=np.float32)[labels]
    drawn = draw_mix(len(images), rng, mixup, cutmix)
    x = images.astype(np.float32)
    if drawn is None:
        return x, targets, None
    name, mix = drawn
    if name == "mixup":
        x = mix.lam * x + (1.0 - mix.lam) * x[mix.perm]
    else:
        h, w = images.shape[1:3]
        y0, y1, x0, x1 = cutmix_box(h, w, mix.lam, rng)
        x[:, y0:y1, x0:x1] = x[mix.perm, y0:y1, x0:x1]
        mix = Mix(mix.perm, 1.0 - (y1 - y0) * (x1 - x0) / (h * w))
    return x, mix_probabilities(targets, mix).astype(np.float32), mix


def mix_probabilities(probs: np.ndarray, mix: Mix) -> np.ndarray:
    """Mix per-example distributions exactly as the batch rows were mixed."""
    return mix.lam * probs + (1.0 - mix.lam) * probs[mix.perm]
