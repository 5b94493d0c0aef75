"""rnn_jax.live.classifiers: one object per live mode, each giving [(hand or None, probabilities)]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import make_fixture_info, write_fixture_onnx

from rnn_jax.errors import ConfigError
from rnn_jax.hands.finder import Hand
from rnn_jax.hands.geometry import Rect
from rnn_jax.live.classifiers import (
    FrameClassifier,
    HandCropClassifier,
    make_classifier,
)
from rnn_jax.live.settings import LiveConfig
from rnn_jax.runtime import Predictor

W, H = 64, 48


def _frame(bgr: tuple[int, int, int]) -> np.ndarray:
    return np.full((H, W, 3), bgr, np.uint8)


def _hand(track_id: int, cx: float = 32.0, cy: float = 24.0) -> Hand:
    pts = np.zeros((21, 3), np.float32)
    pts[:, 0] = cx + np.linspace(-8, 8, 21)
    pts[:, 1] = cy + np.linspace(-8, 8, 21)
    return Hand(pts, 0.99, "right", 0.9, Rect(cx, cy, 20.0, 0.0), track_id, True, (W, H))


@pytest.fixture(scope="module")
def predictors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Predictor]:
    root: Path = tmp_path_factory.mktemp("classifiers")
    full = write_fixture_onnx(root / "full.onnx")
    hand = write_fixture_onnx(root / "hand.onnx", info=make_fixture_info(crop_mode="hand"))
    return {"full": Predictor.load(full, threads=1), "hand": Predictor.load(hand, threads=1)}


def test_frame_classifier_gives_one_result_without_a_hand(predictors: dict[str, Predictor]) -> None:
    whole = FrameClassifier(predictors["full"]).classify(_frame((0, 0, 255)), None)
    assert whole.roi is None and len(whole.results) == 1
    hand, probs = whole.results[0]
    assert hand is None and probs.shape == (3,) and int(np.argmax(probs)) == 0  # red
    assert whole.model_ms >= 0.0
    roi = FrameClassifier(predictors["full"], 0.6).classify(_frame((255, 0, 0)), None)
    assert roi.roi == (17, 9, 29) and int(np.argmax(roi.results[0][1])) == 2  # blue, in the centred square


def test_hand_crop_classifier_gives_one_result_per_hand(predictors: dict[str, Predictor]) -> None:
    classifier = HandCropClassifier(predictors["hand"])
    assert classifier.classify(_frame((0, 255, 0)), []).results == []
    hands = [_hand(3), _hand(7, cx=40.0)]
    out = classifier.classify(_frame((0, 255, 0)), hands)
    assert [h.track_id for h, _ in out.results] == [3, 7] and out.roi is None
    assert all(int(np.argmax(p)) == 1 for _, p in out.results)  # green crops


def test_make_classifier_picks_the_mode(predictors: dict[str, Predictor]) -> None:
    config = LiveConfig()
    hand_default = make_classifier(predictors["hand"], config, None)
    assert isinstance(hand_default, FrameClassifier) and hand_default.roi_fraction == 0.6  # hand models: ROI
    full_default = make_classifier(predictors["full"], config, None)
    assert isinstance(full_default, FrameClassifier) and full_default.roi_fraction is None
    forced = make_classifier(predictors["full"], LiveConfig(roi=True, roi_fraction=0.5), None)
    assert isinstance(forced, FrameClassifier) and forced.roi_fraction == 0.5
    assert isinstance(make_classifier(predictors["full"], config, object()), HandCropClassifier)  # type: ignore[arg-type]


def test_landmark_model_needs_the_finder() -> None:
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor

    fake = object.__new__(LandmarkPredictor)  # only its type matters before the finder check
    with pytest.raises(ConfigError, match="hand finder"):
        make_classifier(fake, LiveConfig(), None)
