"""The context-crop rule for hand crops: stored with extra context, cut to a random box scale each step.

Evaluation (and live) uses a square of ``HAND_EVAL_SCALE`` x the box's longer side at exactly
``image_size``. Training crops are stored with more context (``HAND_TRAIN_SCALE`` x the box, at
``hand_train_size(image_size)`` px) so the training pipeline can draw a random box scale in
``HAND_TRAIN_SCALE_RANGE`` from a fixed cache. Every hand-crop loader (HaGRID annotations, class
folders with found hands, HaGRID parts) stores and views crops by this one rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_jax.hands.crop import HAND_CROP_SCALE
from rnn_jax.preprocess import crop_square

HAND_EVAL_SCALE = HAND_CROP_SCALE  # square side / longer box side at evaluation (and live)
HAND_TRAIN_SCALE = 2.0  # context stored for training crops
HAND_TRAIN_SCALE_RANGE = (1.2, 2.0)  # random box scale drawn at train time
HAND_TRAIN_SHIFT = 0.08  # random centre shift, as a fraction of the crop side


def hand_train_size(image_size: int) -> int:
    """Stored side of training hand crops: the eval crop is then exactly ``image_size`` px inside it."""
    return int(round(image_size * HAND_TRAIN_SCALE / HAND_EVAL_SCALE))


def center_context_crop(images: np.ndarray, out_size: int, stored_scale: float = HAND_TRAIN_SCALE,
                        scale: float = HAND_EVAL_SCALE) -> np.ndarray:
    """Cut the fixed eval-scale crop out of stored training crops (no augmentation)."""
    return np.stack([_context_crop(img, out_size, scale / stored_scale, 0.0, 0.0) for img in images])


def random_context_crop(images: np.ndarray, out_size: int, rng: np.random.Generator,
                        scale_range: tuple[float, float] = HAND_TRAIN_SCALE_RANGE,
                        stored_scale: float = HAND_TRAIN_SCALE,
                        max_shift: float = HAND_TRAIN_SHIFT) -> np.ndarray:
    """Random box-scale augmentation for stored training hand crops (uint8 NHWC in and out).

    Each image gets a box scale drawn log-uniformly from ``scale_range`` (1.5 is what
    evaluation uses) and a small random shift, then is resized to ``out_size``.
    """
    lo, hi = np.log(scale_range[0]), np.log(min(scale_range[1], stored_scale))
    out = []
    for img in images:
        frac = float(np.exp(rng.uniform(lo, hi))) / stored_scale
        dx, dy = rng.uniform(-max_shift, max_shift, size=2)
        out.append(_context_crop(img, out_size, frac, float(dx), float(dy)))
    return np.stack(out)


@dataclass(frozen=True)
class ContextCropView:
    """Training hand crops stored at ``stored_scale`` x the box: each step draws a new box scale."""

    out_size: int
    stored_scale: float = HAND_TRAIN_SCALE
    eval_scale: float = HAND_EVAL_SCALE

    def random(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_context_crop(images, self.out_size, rng, stored_scale=self.stored_scale)

    def clean(self, images: np.ndarray) -> np.ndarray:
        return center_context_crop(images, self.out_size, self.stored_scale, self.eval_scale)


def _context_crop(img: np.ndarray, out_size: int, frac: float, dx: float, dy: float) -> np.ndarray:
    stored = img.shape[0]
    side = max(2, int(round(stored * frac)))
    left = int(round((stored - side) / 2 + dx * side))
    top = int(round((stored - side) / 2 + dy * side))
    return crop_square(np.asarray(img), left, top, side, out_size)
