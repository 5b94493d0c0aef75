"""rnn_jax.runtime.Predictor against hand-built fixture ONNX files (no JAX needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_fixtures import COLOUR_CLASSES, make_fixture_info, write_fixture_onnx

from rnn_jax.errors import ConfigError, DataError, ModelFileError
from rnn_jax.runtime import ModelInfo, Predictor, softmax

REPO = Path(__file__).resolve().parents[1]

BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}


def solid_bgr(name: str, h: int = 48, w: int = 64) -> np.ndarray:
    return np.full((h, w, 3), BGR[name], np.uint8)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fixture_onnx(tmp_path_factory.mktemp("model") / "colours.onnx")


@pytest.fixture(scope="module")
def predictor(model_path: Path) -> Predictor:
    return Predictor.load(model_path, threads=1)


def test_load_exposes_metadata(predictor: Predictor) -> None:
    assert isinstance(predictor.info, ModelInfo)
    assert predictor.class_names == COLOUR_CLASSES
    assert predictor.input_size == 16 and predictor.num_channels == 3
    assert "3 classes" in repr(predictor)


@pytest.mark.parametrize("name", COLOUR_CLASSES)
def test_predict_frame_converts_bgr(predictor: Predictor, name: str) -> None:
    probs = predictor.predict_frame(solid_bgr(name))
    assert probs.shape == (3,) and probs.dtype == np.float32
    assert np.isclose(probs.sum(), 1.0, atol=1e-5)
    assert predictor.class_names[int(probs.argmax())] == name
    assert probs.max() > 0.99


def test_rgb_input_gives_the_same_answer(predictor: Predictor) -> None:
    frame = solid_bgr("blue")
    bgr = predictor.preprocess(frame, colour="bgr")
    rgb = predictor.preprocess(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), colour="rgb")
    np.testing.assert_array_equal(bgr, rgb)


def test_batches_of_any_size(predictor: Predictor) -> None:
    frames = [solid_bgr(n) for n in ("red", "green", "blue", "red", "red")]
    batch = predictor.preprocess(frames)
    assert batch.shape == (5, 16, 16, 3) and batch.dtype == np.uint8
    probs = predictor.predict(batch)
    assert [predictor.class_names[i] for i in probs.argmax(1)] == ["red", "green", "blue", "red", "red"]
    assert predictor.predict_logits(batch[:1].astype(np.float32)).shape == (1, 3)
    with pytest.raises(ValueError, match="16, 16, 3"):
        predictor.predict_logits(np.zeros((1, 8, 8, 3), np.float32))


def test_roi_classifies_the_centre(predictor: Predictor) -> None:
    frame = solid_bgr("blue", 120, 160)
    frame[30:90, 50:110] = BGR["red"]  # a red square in the middle of a blue frame
    assert predictor.class_names[int(predictor.predict_frame(frame).argmax())] == "blue"
    roi_probs = predictor.predict_frame(frame, roi=True)  # centred square = 0.6 * 120 = 72 px
    assert predictor.class_names[int(roi_probs.argmax())] == "red"
    exact = predictor.predict_frame(frame, roi=(50, 30, 60))
    assert exact.max() > 0.999


def test_classify_files(predictor: Predictor, tmp_path: Path) -> None:
    paths = []
    for i, name in enumerate(["green", "red", "blue"]):
        path = tmp_path / f"{i}_{name}.png"
        cv2.imwrite(str(path), solid_bgr(name, 30, 40))
        paths.append(path)
    results = predictor.classify_files(paths, batch_size=2)
    assert [label for label, _ in results] == ["green", "red", "blue"]
    assert all(0.99 < conf <= 1.0 for _, conf in results)
    bad = tmp_path / "not_an_image.jpg"
    bad.write_bytes(b"hello")
    with pytest.raises(DataError):
        predictor.classify_files([bad])


def test_grey_model(tmp_path: Path) -> None:
    path = write_fixture_onnx(tmp_path / "grey.onnx", channels=1, num_classes=2,
                              weight=np.array([[0.05, -0.05]], np.float32))
    pred = Predictor.load(path)
    assert pred.info.channels == "GRAY" and pred.num_channels == 1
    white = np.full((20, 30, 3), 255, np.uint8)
    assert pred.preprocess(white).shape == (1, 16, 16, 1)
    assert pred.predict_frame(white).argmax() == 0
    # a 2-D grey frame with the centre square: mean 40 -> logits (2, -2) -> softmax (0.982, 0.018)
    probs = pred.predict_frame(np.full((20, 30), 40, np.uint8), roi=True)
    np.testing.assert_allclose(probs, [1 / (1 + np.exp(-4.0)), 1 / (1 + np.exp(4.0))], rtol=1e-5)


def test_softmax_is_stable() -> None:
    probs = softmax(np.array([[1000.0, 0.0, -1000.0], [1e30, 1e30, 0.0]], np.float32))
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs, [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-6)


def test_threads_validated(model_path: Path) -> None:
    assert Predictor.load(model_path, threads=2).session is not None
    with pytest.raises(ConfigError, match="threads"):
        Predictor.load(model_path, threads=0)


# ----------------------------------------------------------------- bad files
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        Predictor.load(tmp_path / "nope.onnx")
    with pytest.raises(ModelFileError, match="not a file"):
        Predictor.load(tmp_path)


def test_corrupt_file_one_readable_line(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelFileError, match="not a loadable ONNX model") as exc:
        Predictor.load(path)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)


def test_foreign_onnx_without_metadata(tmp_path: Path) -> None:
    path = write_fixture_onnx(tmp_path / "foreign.onnx", metadata=False)
    with pytest.raises(ModelFileError, match="not an rnn-jax model"):
        Predictor.load(path)


@pytest.mark.parametrize(
    ("info", "match"),
    [
        (make_fixture_info(input_size=32), "axis 1 is 16, expected 32"),
        (make_fixture_info(channels="GRAY"), "axis 3 is 3, expected 1"),
        (make_fixture_info(class_names=("a", "b", "c", "d")), "3 classes but the metadata lists 4"),
        (make_fixture_info(input_name="pixels"), "graph's input is 'images'"),
        (make_fixture_info(output_name="scores"), "graph's outputs are \\['logits'\\]"),
    ],
    ids=["size", "channels", "classes", "input-name", "output-name"],
)
def test_metadata_must_match_graph(tmp_path: Path, info: ModelInfo, match: str) -> None:
    path = write_fixture_onnx(tmp_path / "mismatch.onnx", info=info)
    with pytest.raises(ModelFileError, match=match):
        Predictor.load(path)


def test_runtime_package_is_import_light() -> None:
    """The exporter imports rnn_jax.runtime.metadata; that must not drag in onnxruntime."""
    code = ("import sys, rnn_jax.runtime, rnn_jax.runtime.metadata; "
            "print('onnxruntime' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=60, check=True)
    assert out.stdout.strip() == "False"
