"""The one definition of image preprocessing, shared by training, export and the live loop.

JAX-free on purpose: the webcam machine imports this with only numpy and OpenCV.

Convention (also written into every exported ONNX file):
- images are RGB (or single-channel grey) uint8, NHWC, square ``size x size``;
- the model receives them as float32 in 0..255 and normalises *inside its graph*
  (``x / 127.5 - 1``), so run time only resizes, converts colour and casts.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from rnn_jax.errors import DataError

PIXEL_SCALE = 127.5
PIXEL_OFFSET = 1.0
NORMALIZATION = "x/127.5-1 (inside the graph; feed float32 in 0..255)"
LETTERBOX_FILL = 0
CROP_MODES = ("full", "hand", "stretch")


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Read an image file as RGB (or grey) uint8; raise DataError if it cannot be decoded.

    Decoded in colour, then converted as the live loop converts a camera's BGR frame
    (:func:`bgr_to_model_colour`): libjpeg's own grey decode rounds differently (±1 on ~0.5% of
    a photo's pixels, tests/test_folders.py), and training must see the live loop's pixels."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise DataError(f"cannot read image {path}: missing, empty or not a decodable image")
    return bgr_to_model_colour(image, channels)


def bgr_to_model_colour(frame_bgr: np.ndarray, channels: int) -> np.ndarray:
    """Convert an OpenCV BGR frame to the model's channel order (RGB or grey, HxWxC)."""
    if channels == 1:
        if frame_bgr.ndim == 3 and frame_bgr.shape[2] == 3:
            return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)[..., None]
        return frame_bgr.reshape(frame_bgr.shape[0], frame_bgr.shape[1], 1)
    if frame_bgr.ndim == 2 or frame_bgr.shape[2] == 1:
        return cv2.cvtColor(frame_bgr.reshape(frame_bgr.shape[:2]), cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width < image.shape[1] or height < image.shape[0]
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return out.reshape(height, width, image.shape[2] if image.ndim == 3 else 1)


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Fit a whole frame into ``size x size`` keeping its aspect ratio (pad the short side)."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = _resize(image, new_w, new_h)
    channels = image.shape[2] if image.ndim == 3 else 1
    out = np.full((size, size, channels), LETTERBOX_FILL, dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def stretch(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size x size`` ignoring aspect (for data that is already square-ish)."""
    return _resize(image, size, size)


def square_box(box_xywh: tuple[float, float, float, float], width: int, height: int,
               scale: float = 1.5) -> tuple[int, int, int]:
    """A square around a normalised COCO box (x, y, w, h in 0..1): returns (left, top, side) in pixels.

    The side is ``scale`` times the box's longer side, so the whole hand and a little context fit.
    """
    x, y, w, h = box_xywh
    cx, cy = (x + w / 2) * width, (y + h / 2) * height
    side = max(2, round(max(w * width, h * height) * scale))
    return round(cx - side / 2), round(cy - side / 2), side


def crop_square(image: np.ndarray, left: int, top: int, side: int, size: int) -> np.ndarray:
    """Crop a square that may run past the image border (outside is filled) and resize it."""
    h, w = image.shape[:2]
    channels = image.shape[2] if image.ndim == 3 else 1
    canvas = np.full((side, side, channels), LETTERBOX_FILL, dtype=np.uint8)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, w), min(top + side, h)
    if x1 > x0 and y1 > y0:
        canvas[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1].reshape(
            y1 - y0, x1 - x0, channels)
    return _resize(canvas, size, size)


def center_square(image: np.ndarray, fraction: float = 0.6) -> tuple[int, int, int]:
    """The centred square ROI (left, top, side) the live ``--roi`` mode asks the user to fill."""
    h, w = image.shape[:2]
    side = max(2, round(min(h, w) * fraction))
    return (w - side) // 2, (h - side) // 2, side


def prepare(image: np.ndarray, size: int, crop_mode: str = "full") -> np.ndarray:
    """Bring one RGB/grey uint8 image to the model's square input (still uint8).

    ``full`` letterboxes the whole frame, ``stretch`` resizes ignoring aspect, ``hand``
    expects the caller to have cropped already (it then behaves like ``stretch``).
    """
    if crop_mode == "full":
        return letterbox(image, size)
    if crop_mode in ("stretch", "hand"):
        return stretch(image, size)
    raise ValueError(f"unknown crop mode {crop_mode!r}; expected one of {CROP_MODES}")


def to_model_input(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NHWC in 0..255 (normalisation happens inside the model graph)."""
    images = np.asarray(images_uint8)
    if images.ndim == 3:
        images = images[None]
    return np.ascontiguousarray(images, dtype=np.float32)
