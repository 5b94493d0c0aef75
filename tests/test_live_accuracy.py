"""tools/live_accuracy.py: the video made from labelled photos agrees with offline evaluation."""

from __future__ import annotations

import importlib.util
import json

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
    from rnn_jax.data.landmark_synthetic import builtin_landmarks
    from rnn_jax.export.landmark_export import export_landmark_model, state_layout
    from rnn_jax.hands.features import landmark_features
    from rnn_jax.models.registry import ModelSpec, create_model
    from rnn_jax.runtime.landmark_predictor import LandmarkInfo

    model = create_model(ModelSpec("lmlp", "tiny"), (1, 21, 3), 2, seed=0)  # stateless: live = offline
    frames = landmark_features(builtin_landmarks(people=3, per_class=3).landmarks[:60])
    info = LandmarkInfo(class_names=("1", "5"), state_size=0, state_layout=state_layout(model))
    onnx_path = tmp_path / "lmlp.onnx"
    export_landmark_model(model, info, onnx_path, frames)
    result = live_accuracy.run(onnx_path, _digit_photos(tmp_path), hold=8, settle=4, smoothing="none",
                               threshold=0.0, stable_frames=1, hands="auto", hand_models=hand_models)
    assert result["landmark_model"]  # the README's command: no --hands, the finder comes with the model
    _same_live_as_offline(result)


def _mini_hagrid(tmp_path, gestures=("call", "like", "palm"), per_gesture=2):
    """A HaGRID root of a few real annotated val photos (symlinked), in the sample's layout."""
    import json

    from tests.conftest import shared_data

    source = shared_data("hagrid-sample")
    root = tmp_path / "mini"
    for gesture in gestures:
        entries = json.loads((source / "hagrid_annotations" / "val" / f"{gesture}.json").read_text())
        keep = dict(list(entries.items())[:per_gesture])
        (root / "hagrid_annotations" / "val").mkdir(parents=True, exist_ok=True)
        (root / "hagrid_annotations" / "val" / f"{gesture}.json").write_text(json.dumps(keep))
        (root / "hagrid_dataset" / gesture).mkdir(parents=True, exist_ok=True)
        for name in keep:
            (root / "hagrid_dataset" / gesture / f"{name}.jpg").symlink_to(
                source / "hagrid_dataset" / gesture / f"{name}.jpg")
    return root


def _landmark_onnx(tmp_path, class_names):
    from rnn_jax.data.landmark_synthetic import builtin_landmarks
    from rnn_jax.export.landmark_export import export_landmark_model, state_layout
    from rnn_jax.hands.features import landmark_features
    from rnn_jax.models.registry import ModelSpec, create_model
    from rnn_jax.runtime.landmark_predictor import LandmarkInfo

    model = create_model(ModelSpec("lmlp", "tiny"), (1, 21, 3), len(class_names), seed=0)
    frames = landmark_features(builtin_landmarks(people=3, per_class=3).landmarks[:60])
    info = LandmarkInfo(class_names=tuple(class_names), state_size=0, state_layout=state_layout(model),
                        reject_threshold=0.5, temperature=1.0)
    path = tmp_path / "lm.onnx"
    export_landmark_model(model, info, path, frames)
    return path


@pytest.mark.shared
def test_a_threshold_sweep_replays_the_same_frames_and_stores_its_choice(tmp_path, hand_models):
    """--hagrid --sweep: hands are found once and replayed; at the first pass's own threshold the
    replay scores exactly what the first pass scored, and --store writes the chosen threshold
    into the file that rnn_jax.live then uses by default."""
    from rnn_jax.runtime.landmark_predictor import load_predictor

    root = _mini_hagrid(tmp_path)
    onnx_path = _landmark_onnx(tmp_path, ["call", "like", "no_gesture", "palm"])
    result = live_accuracy.run_hagrid(onnx_path, root, "val", hold=6, settle=2, smoothing="ema:0.5",
                                      threshold=0.4, stable_frames=2, frame_size=640, hand_models=hand_models,
                                      sweep=(0.0, 0.4, 0.99))
    rows = {row["threshold"]: row for row in result["sweep"]}
    assert result["gesture_frames"] == 6 * 4  # 3 gestures x 2 photos x (6 - 2) settled frames
    for key in ("live_gesture_right", "live_gesture_wrong", "live_gesture_lost", "live_resting_triggered"):
        assert rows[0.4][key] == result[key]
    assert rows[0.0]["live_gesture_lost"] == rows[0.99]["live_gesture_lost"] == result["live_gesture_lost"]
    shown = {t: rows[t]["live_gesture_right"] + rows[t]["live_gesture_wrong"] for t in rows}
    assert shown[0.0] >= shown[0.4] >= shown[0.99]  # a higher threshold never shows more gestures

    out = tmp_path / "sweep.json"
    assert live_accuracy.main(["--onnx", str(onnx_path), "--hagrid", str(root), "--hold", "4", "--settle", "2",
                               "--hand-models", str(hand_models), "--sweep", "--store",
                               "--max-false-trigger", "0.5", "--json", str(out)]) == 0
    swept = json.loads(out.read_text())
    rates = {row["threshold"]: row["live_resting_triggered"] for row in swept["sweep"]}
    chosen = min(t for t, rate in rates.items() if rate <= 0.5)
    assert swept["chosen_threshold"] == chosen and len(rates) == 13
    assert load_predictor(onnx_path).info.reject_threshold == chosen
    with pytest.raises(SystemExit) as exit_info:
        live_accuracy.main(["--onnx", str(onnx_path), "--images", str(tmp_path), "--store"])
    assert exit_info.value.code == 2


def test_smallest_threshold_within_the_false_trigger_rate():
    from rnn_jax.calibration import smallest_threshold_within

    rates = {0.3: 0.20, 0.4: 0.12, 0.5: 0.08, 0.6: 0.02}
    assert smallest_threshold_within(rates, 0.10) == 0.5
    assert smallest_threshold_within(rates, 0.25) == 0.3
    assert smallest_threshold_within(rates, 0.01) is None
    with pytest.raises(ValueError):
        smallest_threshold_within(rates, 1.0)


def test_a_missing_model_or_root_is_one_line_and_exit_2(tmp_path) -> None:
    """Errors go through main_guard like every other CLI: one line, exit 2, no traceback."""
    import subprocess
    import sys

    script = REPO / "tools" / "live_accuracy.py"
    done = subprocess.run([sys.executable, str(script), "--onnx", str(tmp_path / "missing.onnx"),
                           "--hagrid", str(tmp_path / "no-root")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error:"), done.stderr
