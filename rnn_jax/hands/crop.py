"""The one hand-crop rule, shared by training (rnn_jax.data) and the live loop.

Only numpy and OpenCV: data loading imports it without onnxruntime sessions.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from rnn_jax import preprocess

HAND_CROP_SCALE = 1.5  # classifier square side / hand box's longer side (HaGRID's eval rule too)
DETECTION_PAD = 0.25  # pad_for_detection: replicated border on each side, x the long side
Box = tuple[float, float, float, float]  # normalised COCO box: x, y, w, h in 0..1


class HasBox(Protocol):
    @property
    def box(self) -> tuple[float, float, float, float]: ...  # pixels: x, y, w, h


def normalised(box_px: tuple[float, float, float, float], width: int, height: int) -> Box:
    x, y, w, h = box_px
    return (x / width, y / height, w / width, h / height)


def crop_square_of(frame_shape: tuple[int, ...], hand: HasBox | Box,
                   scale: float = HAND_CROP_SCALE) -> tuple[int, int, int]:
    """(left, top, side) in pixels of the classifier's square for a hand or a normalised box."""
    h, w = frame_shape[:2]
    box = hand if isinstance(hand, tuple) else normalised(hand.box, w, h)
    return preprocess.square_box(box, w, h, scale)


def hand_crop(frame: np.ndarray, hand: HasBox | Box, size: int, scale: float = HAND_CROP_SCALE) -> np.ndarray:
    """The classifier's input for one hand: an upright square ``scale`` x the hand box, resized.

    ``hand`` is a :class:`rnn_jax.hands.Hand` (live, or found at cache time) or a normalised
    COCO box (HaGRID annotations); both go through :func:`rnn_jax.preprocess.square_box`
    and :func:`~rnn_jax.preprocess.crop_square`, the rule HaGRID's annotated boxes use, so
    training and live see the same square. Pixels outside the frame are black.
    """
    left, top, side = crop_square_of(frame.shape, hand, scale)
    return preprocess.crop_square(frame, left, top, side, size)


def pad_for_detection(image: np.ndarray, fraction: float = DETECTION_PAD) -> np.ndarray:
    """Replicate the border ``fraction`` x the long side on every side of a close-up photo.

    Why: when the hand fills the picture (Sign Language Digits) the palm detector, trained
    on wider views, misses many hands (about 1 in 5 there); the padded photo looks like a
    camera frame with the hand in it. Training crops and the live check both use the
    padded photo, so they see the same pixels.
    """
    pad = round(max(image.shape[:2]) * fraction)
    return cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
