"""Find hands in frames, JAX-free (numpy, OpenCV, onnxruntime only).

    from rnn_jax.hands import HandFinder, hand_crop
    finder = HandFinder.load()            # models from `python tools/build_hand_models.py`
    for hand in finder.find(frame_bgr):   # tracked between calls
        crop = hand_crop(frame_rgb, hand, 64)

MediaPipe's palm detector and 21-landmark model (converted to ONNX once, kept in
``$RNN_JAX_HANDS`` or ``~/.cache/rnn-jax/hands``), with our own decoding, tracking and the
one hand-crop rule that training (:mod:`rnn_jax.data`) and the live loop share.
"""

from __future__ import annotations

from rnn_jax.hands.crop import HAND_CROP_SCALE, crop_square_of, hand_crop, pad_for_detection
from rnn_jax.hands.finder import FinderConfig, Hand, HandFinder, find_hands_in_image
from rnn_jax.hands.models import (
    BUILD_COMMAND,
    ENV_VAR,
    HandModelsMissing,
    default_model_dir,
    model_paths,
    models_present,
)

__all__ = [
    "BUILD_COMMAND", "ENV_VAR", "HAND_CROP_SCALE", "FinderConfig", "Hand", "HandFinder",
    "HandModelsMissing", "crop_square_of", "default_model_dir", "find_hands_in_image", "hand_crop",
    "model_paths", "models_present", "pad_for_detection",
]
