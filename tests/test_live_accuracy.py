"""tools/live_accuracy.py: the video made from labelled photos agrees with offline evaluation."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from tests.conftest import REPO
from tests.onnx_fixtures import write_fixture_onnx

spec = importlib.util.spec_from_file_location("live_accuracy", REPO / "tools" / "live_accuracy.py")
live_accuracy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(live_accuracy)


def test_solid_colour_photos_are_recognised_live_as_offline(tmp_path):
    onnx_path = write_fixture_onnx(tmp_path / "colours.onnx")
    colours = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}  # BGR
    for name, bgr in colours.items():
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(3):
            image = np.full((40, 40, 3), bgr, np.uint8)
            cv2.imwrite(str(tmp_path / "photos" / name / f"{i}.png"), image)
    result = live_accuracy.run(onnx_path, tmp_path / "photos", hold=10, settle=6, smoothing="ema:0.5",
                               threshold=0.6, stable_frames=3)
    assert result["photos"] == 9 and result["frames"] == 90 and result["frames_scored"] == 36
    assert result["offline_accuracy"] == 1.0
    assert result["live_accuracy"] == 1.0


def _digit_photos(tmp_path):
    """Two real Sign Language Digits photos of each of two digits, as class folders."""
    import shutil

    from tests.conftest import shared_data

    src = shared_data("sign-language-digits", "val")
    root = tmp_path / "digits"
    for digit in ("1", "5"):
        (root / digit).mkdir(parents=True)
        for photo in sorted((src / digit).iterdir())[:2]:
            shutil.copy(photo, root / digit / photo.name)
    return root


def _same_live_as_offline(result: dict, photos: int = 4, hold: int = 8, settle: int = 4) -> None:
    assert result["hands"] and result["photos"] == photos and result["photos_without_hand"] == 0
    assert result["frames"] == photos * hold and result["frames_scored"] == photos * (hold - settle)
    assert result["stable_coverage"] == 1.0  # threshold 0: a hand found (and a label shown) on every scored frame
    assert result["live_accuracy"] == result["offline_accuracy"]
    assert result["hands_p50_ms"] > 0 and result["model_latency_p50_ms"] > 0


@pytest.mark.shared
def test_hands_on_scores_the_hand_crops_live_as_offline(tmp_path, hand_models):
    from tests.onnx_fixtures import make_fixture_info

    onnx_path = write_fixture_onnx(tmp_path / "hand.onnx", num_classes=2,
                                   info=make_fixture_info(class_names=("1", "5"), crop_mode="hand"))
    result = live_accuracy.run(onnx_path, _digit_photos(tmp_path), hold=8, settle=4, smoothing="none",
                               threshold=0.0, stable_frames=1, hands="on", hand_models=hand_models)
    assert not result["landmark_model"]
    _same_live_as_offline(result)
    # the colour-mean fixture calls every skin-toned crop "1" (red channel > green): 2 of 4 right
    assert result["offline_accuracy"] == 0.5


@pytest.mark.shared
def test_a_landmark_model_runs_on_the_hand_finder_live_as_offline(tmp_path, hand_models):
    from rnn_jax.data.landmarks import builtin_landmarks
    from rnn_jax.export.landmark_export import export_landmark_model, state_layout
    from rnn_jax.hands.features import landmark_features
    from rnn_jax.models.registry import ModelSpec, create_model
    from rnn_jax.runtime.landmarks import LandmarkInfo

    model = create_model(ModelSpec("lmlp", "tiny"), (1, 21, 3), 2, seed=0)  # stateless: live = offline
    frames = landmark_features(builtin_landmarks(people=3, per_class=3).landmarks[:60])
    info = LandmarkInfo(class_names=("1", "5"), state_size=0, state_layout=state_layout(model))
    onnx_path = tmp_path / "lmlp.onnx"
    export_landmark_model(model, info, onnx_path, frames)
    result = live_accuracy.run(onnx_path, _digit_photos(tmp_path), hold=8, settle=4, smoothing="none",
                               threshold=0.0, stable_frames=1, hands="auto", hand_models=hand_models)
    assert result["landmark_model"]  # the README's command: no --hands, the finder comes with the model
    _same_live_as_offline(result)
