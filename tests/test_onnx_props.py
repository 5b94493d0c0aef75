"""tools/live_checks/onnx_props.py: the threshold written into a model file without the onnx package."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from rnn_jax.errors import ModelFileError
from tests.conftest import BLOCK_TRAINING_IMPORTS
from tests.onnx_fixtures import make_fixture_info, write_fixture_onnx
from tools.live_checks.onnx_props import read_props, replace_props, set_props

KEY = "rnn_jax.reject_threshold"


def test_the_rewritten_file_differs_from_the_original_only_in_that_value(tmp_path):
    path = write_fixture_onnx(tmp_path / "m.onnx", info=make_fixture_info(reject_threshold=0.7))
    before = onnx.load(str(path))
    assert read_props(path.read_bytes()) == {p.key: p.value for p in before.metadata_props}
    set_props(path, {KEY: json.dumps(0.35)})
    after = onnx.load(str(path))
    props = {p.key: p.value for p in after.metadata_props}
    assert props[KEY] == "0.35"
    assert {k: v for k, v in props.items() if k != KEY} == {p.key: p.value for p in before.metadata_props
                                                             if p.key != KEY}
    assert after.graph == before.graph and after.opset_import == before.opset_import
    assert after.ir_version == before.ir_version and after.producer_name == before.producer_name


def test_the_runtime_reads_the_new_threshold_and_the_same_logits(tmp_path):
    from rnn_jax.runtime.predictor import Predictor

    path = write_fixture_onnx(tmp_path / "m.onnx", info=make_fixture_info(reject_threshold=0.7))
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    logits = Predictor.load(path).predict(images)
    set_props(path, {KEY: json.dumps(0.42)})
    predictor = Predictor.load(path)
    assert predictor.info.reject_threshold == 0.42
    np.testing.assert_array_equal(predictor.predict(images), logits)


def test_a_key_the_file_lacks_or_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = write_fixture_onnx(tmp_path / "m.onnx")
    with pytest.raises(ModelFileError, match="no rnn_jax.nothing"):
        replace_props(path.read_bytes(), {"rnn_jax.nothing": "1"})
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x0f\xff\xff")  # wire type 7: no protobuf
    with pytest.raises(ModelFileError):
        set_props(bad, {KEY: "0.5"})
    assert bad.read_bytes() == b"\x0f\xff\xff"  # left as it was


def test_storing_a_threshold_needs_neither_onnx_nor_jax(tmp_path):
    """tools/live_accuracy.py's --store on a base install: onnx, JAX and Flax cannot be imported."""
    path = write_fixture_onnx(tmp_path / "m.onnx", info=make_fixture_info(reject_threshold=0.7))
    code = BLOCK_TRAINING_IMPORTS + f"""
from tools.live_checks.hagrid import store_threshold
from rnn_jax.runtime.predictor import Predictor
store_threshold({str(path)!r}, 0.55, "ema:0.5", 5)
print(Predictor.load({str(path)!r}).info.reject_threshold)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0.55"
