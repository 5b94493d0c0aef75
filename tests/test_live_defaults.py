"""One source for each live default (issue 36 part 3): the smoothing, stable frames, threshold and
false-trigger target are defined once, and a model file's live threshold travels with the
smoothing and stable frames it was chosen under, which rnn_jax.live and tools/live_accuracy.py
then use unless the user says otherwise."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace

import cv2
import numpy as np
import onnx
import pytest

from rnn_jax.errors import ModelFileError
from rnn_jax.live.settings import gesture_origins, resolve_gesture
from rnn_jax.live.smoothing import GestureConfig, SmoothingConfig
from rnn_jax.runtime.metadata import LIVE_KEYS, PREFIX
from rnn_jax.runtime.predictor import Predictor
from tests.conftest import REPO
from tests.onnx_fixtures import make_fixture_info, write_fixture_onnx
from tests.test_live import write_test_video

spec = importlib.util.spec_from_file_location("live_accuracy", REPO / "tools" / "live_accuracy.py")
live_accuracy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(live_accuracy)

STORED = {"live_smoothing": "vote:5", "live_stable_frames": 1, "reject_threshold": 0.5}


def _events(capsys, argv) -> tuple[list[tuple[str, str, int]], str]:
    from rnn_jax.live.cli import main

    assert main(argv) == 0
    captured = capsys.readouterr()
    return [(e["event"], e["label"], e["frame"]) for e in map(json.loads, captured.out.splitlines())], captured.err


def test_a_model_file_with_stored_smoothing_makes_live_use_it(tmp_path, capsys):
    """Solid red for 6 frames, then blue for 6: with the file's vote:5 and 1 stable frame, red starts at
    once and blue when it holds 3 of the last 5 frames (frame 8); --smoothing none (the user) wins and
    blue starts on its first frame; a file that stores nothing gets the defaults (ema:0.5, 5 stable)."""
    video = write_test_video(tmp_path / "clip.avi", ["red"] * 6 + ["blue"] * 6)
    stored = write_fixture_onnx(tmp_path / "stored.onnx", info=make_fixture_info(**STORED))
    plain = write_fixture_onnx(tmp_path / "plain.onnx", info=make_fixture_info(reject_threshold=0.5))
    base = ["--source", str(video), "--headless", "--threads", "1"]

    events, err = _events(capsys, ["--onnx", str(stored), *base])
    starts = [(label, frame) for kind, label, frame in events if kind == "started"]
    assert starts == [("red", 0), ("blue", 8)]
    assert "smoothing vote:5 (model file)" in err and "stable 1" in err

    events, err = _events(capsys, ["--onnx", str(stored), *base, "--smoothing", "none"])
    assert [(label, frame) for kind, label, frame in events if kind == "started"] == [("red", 0), ("blue", 6)]
    assert "smoothing none (--smoothing)" in err

    events, err = _events(capsys, ["--onnx", str(plain), *base])
    defaults = GestureConfig()
    assert f"smoothing {defaults.smoothing} (default)" in err and f"stable {defaults.stable_frames}" in err
    assert [(label, frame) for kind, label, frame in events if kind == "started"][0] == (
        "red", defaults.stable_frames - 1)


def test_each_value_is_the_users_else_the_files_else_the_default():
    info = make_fixture_info(**STORED)
    assert resolve_gesture(None, None, None, info) == GestureConfig(SmoothingConfig("vote", window=5), 0.5, 1)
    assert resolve_gesture("ema:0.3", 0.7, 4, info) == GestureConfig(SmoothingConfig("ema", alpha=0.3), 0.7, 4)
    assert resolve_gesture(None, None, None, make_fixture_info()) == GestureConfig()
    assert resolve_gesture(None, None, None, None) == GestureConfig()
    assert gesture_origins(None, 0.7, None, info) == {"smoothing": "model file", "threshold": "--threshold",
                                                      "stable_frames": "model file"}
    with pytest.raises(ModelFileError, match="live smoothing"):
        resolve_gesture(None, None, None, make_fixture_info(live_smoothing="wobble:3"))
    with pytest.raises(ModelFileError, match="stable frames"):
        make_fixture_info(live_stable_frames=0)


def test_live_accuracy_takes_its_defaults_from_their_one_definition(monkeypatch):
    from rnn_jax import calibration

    args = live_accuracy.build_parser().parse_args(["--onnx", "m.onnx", "--images", "x"])
    assert args.max_false_trigger == calibration.DEFAULT_MAX_FALSE_TRIGGER
    assert (args.smoothing, args.stable_frames, args.threshold) == (None, None, None)  # resolved with the file
    monkeypatch.setattr(calibration, "DEFAULT_MAX_FALSE_TRIGGER", 0.07)
    assert live_accuracy.build_parser().parse_args(["--onnx", "m.onnx", "--images", "x"]).max_false_trigger == 0.07


def test_live_accuracy_runs_under_the_files_smoothing_unless_told(tmp_path):
    colours = {"red": (0, 0, 255), "blue": (255, 0, 0)}  # BGR
    for name, bgr in colours.items():
        (tmp_path / "photos" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "photos" / name / "0.png"), np.full((40, 40, 3), bgr, np.uint8))
    stored = write_fixture_onnx(tmp_path / "stored.onnx", info=make_fixture_info(**STORED))
    result = live_accuracy.run(stored, tmp_path / "photos", hold=6, settle=3, smoothing=None, threshold=None,
                               stable_frames=None)
    assert (result["smoothing"], result["stable_frames"], result["threshold"]) == ("vote:5", 1, 0.5)
    told = live_accuracy.run(stored, tmp_path / "photos", hold=6, settle=3, smoothing="none", threshold=None,
                             stable_frames=2)
    assert (told["smoothing"], told["stable_frames"]) == ("none", 2)


def test_a_stored_threshold_carries_its_smoothing_even_into_an_older_file(tmp_path):
    """--store writes the three together; a file exported before the smoothing keys existed gets them."""
    from tools.live_checks.hagrid import store_threshold

    path = write_fixture_onnx(tmp_path / "old.onnx", info=make_fixture_info(reject_threshold=0.7))
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key not in (PREFIX + k for k in LIVE_KEYS[1:])]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, str(path))
    assert Predictor.load(path).info.live_smoothing is None
    store_threshold(path, 0.45, "vote:3", 2)
    info = Predictor.load(path).info
    assert (info.reject_threshold, info.live_smoothing, info.live_stable_frames) == (0.45, "vote:3", 2)
    store_threshold(path, 0.5, "EMA:0.25", 4)  # now present: replaced in place, written in the parsed form
    info = Predictor.load(path).info
    assert (info.reject_threshold, info.live_smoothing, info.live_stable_frames) == (0.5, "ema:0.25", 4)


def test_iter_predictions_takes_the_live_defaults_from_the_model_file_or_gesture_config(tmp_path):
    """rnn_jax.live.iter_predictions types no default of its own: None = the model file's stored
    setting, else GestureConfig's (a typed default here would be a second copy that drifts)."""
    import inspect

    from rnn_jax.live import iter_predictions

    params = inspect.signature(iter_predictions).parameters
    assert params["smoothing"].default is None and params["stable_frames"].default is None
    assert params["threshold"].default is None
    video = write_test_video(tmp_path / "clip.avi", ["red"] * 3)
    stored = write_fixture_onnx(tmp_path / "stored.onnx", info=make_fixture_info(**STORED))
    plain = write_fixture_onnx(tmp_path / "plain.onnx", info=make_fixture_info(reject_threshold=0.5))
    with iter_predictions(stored, str(video), threads=1) as stream:
        assert stream.config.gesture == GestureConfig(SmoothingConfig("vote", window=5), 0.5, 1)
    with iter_predictions(stored, str(video), threads=1, smoothing="none", stable_frames=3) as stream:
        assert stream.config.gesture == GestureConfig(SmoothingConfig.parse("none"), 0.5, 3)
    with iter_predictions(plain, str(video), threads=1) as stream:
        assert stream.config.gesture == replace(GestureConfig(), threshold=0.5)
