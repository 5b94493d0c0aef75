"""One classifier object per live mode, each turning a frame into ``[(hand or None, probabilities)]``.

- :class:`FrameClassifier`: an image model on the whole (letterboxed) frame or its centred
  square (ROI); one result with no hand.
- :class:`HandCropClassifier`: an image model on each found hand's crop (the training rule,
  :func:`rnn_jax.hands.hand_crop`), one batch per frame.
- :class:`LandmarkClassifier`: a landmark model on each hand's landmarks, one recurrent state
  per tracked hand carried frame to frame.

Why objects: the frame loop (:class:`rnn_jax.live.loop.PredictionStream`) then times, tracks,
smooths and records every mode the same way; a new live mode is one more class here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rnn_jax import preprocess
from rnn_jax.errors import ConfigError
from rnn_jax.runtime.landmark_predictor import HandStates, LandmarkPredictor

if TYPE_CHECKING:
    from rnn_jax.hands import Hand, HandFinder
    from rnn_jax.live.settings import LiveConfig
    from rnn_jax.runtime.predictor import Predictor


@dataclass(frozen=True)
class Classified:
    """One frame's classifier output: per hand (None = the frame itself) its probabilities [K]."""

    results: list[tuple[Hand | None, np.ndarray]]
    model_ms: float  # the model alone: cast + onnxruntime run + softmax
    roi: tuple[int, int, int] | None = None  # (left, top, side) classified, None = whole frame or hands


class LiveClassifier(Protocol):
    """What the frame loop needs from a classifier (``hands``: the finder's, None when it is off)."""

    def classify(self, frame: np.ndarray, hands: list[Hand] | None) -> Classified: ...

    def reset(self) -> None: ...


def _timed(predict, *args) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = predict(*args)
    return out, (time.perf_counter() - start) * 1000.0


class FrameClassifier:
    """An image model on the frame: letterboxed whole, or its centred square (``roi_fraction``)."""

    def __init__(self, predictor: Predictor, roi_fraction: float | None = None) -> None:
        self.predictor = predictor
        self.roi_fraction = roi_fraction  # None = whole frame

    def classify(self, frame: np.ndarray, hands: list[Hand] | None = None) -> Classified:
        roi = preprocess.center_square(frame, self.roi_fraction) if self.roi_fraction is not None else None
        batch = self.predictor.preprocess(frame, "bgr", roi)
        probs, model_ms = _timed(self.predictor.predict, batch)
        return Classified([(None, probs[0])], model_ms, roi)

    def reset(self) -> None:
        pass


class HandCropClassifier:
    """An image model on each hand's square crop (what ``--crop hand`` training saw), one batch."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def classify(self, frame: np.ndarray, hands: list[Hand] | None) -> Classified:
        from rnn_jax.hands.crop import hand_crop

        hands = hands or []
        if not hands:
            return Classified([], 0.0)
        image = preprocess.bgr_to_model_colour(frame, self.predictor.num_channels)
        crops = np.stack([hand_crop(image, h, self.predictor.input_size) for h in hands])
        probs, model_ms = _timed(self.predictor.predict, crops)
        return Classified(list(zip(hands, probs, strict=True)), model_ms)

    def reset(self) -> None:
        pass


class LandmarkClassifier:
    """A landmark model: each hand's landmark features, its own state advanced one frame."""

    def __init__(self, predictor: LandmarkPredictor) -> None:
        self.states = HandStates(predictor)

    def classify(self, frame: np.ndarray, hands: list[Hand] | None) -> Classified:
        hands = hands or []
        probs, model_ms = _timed(self.states.classify, hands)
        return Classified(list(zip(hands, probs, strict=True)), model_ms)

    def reset(self) -> None:
        self.states.reset()


def make_classifier(predictor: Predictor | LandmarkPredictor, config: LiveConfig, finder: HandFinder | None) -> LiveClassifier:
    """The classifier for this model and finder: landmarks, hand crops, or the frame (ROI by config).

    A model trained on square hand crops must see a square hand crop live, not the whole
    letterboxed frame: that is why "hand" models default to the ROI when no finder runs.
    """
    if isinstance(predictor, LandmarkPredictor):
        if finder is None:
            raise ConfigError("a landmark model needs the hand finder (--hands on, and the hand models built: "
                              "python tools/build_hand_models.py)")
        return LandmarkClassifier(predictor)
    if finder is not None:
        return HandCropClassifier(predictor)
    roi = config.roi if config.roi is not None else predictor.info.crop_mode == "hand"
    return FrameClassifier(predictor, config.roi_fraction if roi else None)
