"""rnn_jax/bundled: the trained HaGRID landmark model that ships in the package, and its attribution."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys

import pytest

from rnn_jax.bundled import ATTRIBUTION_FILE, CARD_FILE, bundled_model
from tests.conftest import BLOCK_TRAINING_IMPORTS, REPO


def test_the_bundled_model_loads_as_an_18_gesture_landmark_model_with_its_reject_rule():
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor, load_predictor

    predictor = load_predictor(bundled_model())
    assert isinstance(predictor, LandmarkPredictor)
    names = predictor.class_names
    assert len(names) == 19 and "no_gesture" in names and {"like", "palm", "peace_inverted", "three2"} <= set(names)
    card = json.loads((bundled_model().parent / CARD_FILE).read_text())
    assert predictor.info.reject_threshold == card["reject_threshold"]
    assert predictor.info.temperature == card["temperature"]
    assert list(names) == card["class_names"]


def test_the_attribution_names_hagrid_its_authors_and_licence():
    text = (bundled_model().parent / ATTRIBUTION_FILE).read_text()
    assert "Kapitanov" in text and "CC BY-SA 4.0" in text and "HaGRID" in text


def test_every_bundled_file_is_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["rnn_jax.bundled"]
    files = [p.name for p in bundled_model().parent.iterdir() if p.is_file() and p.suffix != ".py"]
    assert bundled_model().name in files and CARD_FILE in files and ATTRIBUTION_FILE in files
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in patterns) for name in files)


def test_live_without_onnx_uses_the_bundled_model_and_no_jax():
    """`python -m rnn_jax.live` with no --onnx: the parser's model is the bundled file, and loading
    it imports neither JAX, Flax nor onnx (the base install has none of them)."""
    code = BLOCK_TRAINING_IMPORTS + """
from rnn_jax.live.cli import build_parser
from rnn_jax.runtime.landmark_predictor import load_predictor
path = build_parser().parse_args([]).onnx
print(path)
print(len(load_predictor(path).class_names))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    path, classes = done.stdout.split()
    assert path == str(bundled_model()) and classes == "19"
