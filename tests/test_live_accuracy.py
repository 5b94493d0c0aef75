"""tools/live_accuracy.py: the video made from labelled photos agrees with offline evaluation."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np

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
