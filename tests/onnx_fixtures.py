"""TEST FIXTURE ONLY: hand-built tiny ONNX models for the runtime/live tests.

This is *not* the rnn-jax exporter (that lives in tools/ and rnn_jax/export and needs
JAX). It builds, with ``onnx.helper``, the smallest graph that honours the model file
contract -- float32 NHWC ``images`` in 0..255 -> ``logits`` [B, K] -- so the JAX-free
side can be tested without JAX:

    images [B, S, S, C] -> ReduceMean over H, W -> [B, C] -> MatMul W [C, K] -> Add b -> logits

With the default weights the classes are "red", "green", "blue": the logit of each is
the mean of that colour channel (0..255) times ``scale``, so a solid colour is classified
confidently and a mixed natural image (a video frame) gets low confidence.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rnn_jax.runtime.metadata import ModelInfo

COLOUR_CLASSES = ("red", "green", "blue")


def make_fixture_info(**overrides: object) -> ModelInfo:
    """Metadata for a fixture model (override any field)."""
    base = ModelInfo(class_names=COLOUR_CLASSES, input_size=16, channels="RGB", crop_mode="full",
                     model_name="onnx-fixture", generation=0, run_name="test-fixture")
    return replace(base, **overrides)  # type: ignore[arg-type]


def write_fixture_onnx(
    path: str | Path,
    *,
    size: int = 16,
    channels: int = 3,
    num_classes: int = 3,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    scale: float = 0.05,
    info: ModelInfo | None = None,
    metadata: bool = True,
    input_name: str = "images",
    output_name: str = "logits",
) -> Path:
    """Write a tiny colour-mean classifier to ``path`` and return the path.

    ``info`` is the metadata to attach (default: :func:`make_fixture_info` matching the
    graph); pass one that disagrees with ``size``/``channels``/``num_classes`` to test the
    consistency checks, or ``metadata=False`` for a "foreign" ONNX file.
    """
    path = Path(path)
    if weight is None:
        weight = np.zeros((channels, num_classes), np.float32)
        for k in range(min(channels, num_classes)):
            weight[k, k] = scale
    if bias is None:
        bias = np.zeros((num_classes,), np.float32)
    graph = helper.make_graph(
        nodes=[
            helper.make_node("ReduceMean", [input_name, "axes"], ["mean"], keepdims=0),
            helper.make_node("MatMul", ["mean", "W"], ["mm"]),
            helper.make_node("Add", ["mm", "b"], [output_name]),
        ],
        name="rnn_jax_test_fixture",
        inputs=[helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                              ["batch", size, size, channels])],
        outputs=[helper.make_tensor_value_info(output_name, TensorProto.FLOAT,
                                               ["batch", num_classes])],
        initializer=[
            numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
            numpy_helper.from_array(np.asarray(weight, np.float32), "W"),
            numpy_helper.from_array(np.asarray(bias, np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              producer_name="rnn-jax-tests")
    model.ir_version = 9  # onnxruntime >= 1.17 reads IR 9; onnx's newest IR may be too new
    if metadata:
        if info is None:
            info = make_fixture_info(
                class_names=COLOUR_CLASSES if num_classes == 3 else tuple(f"c{k}" for k in range(num_classes)),
                input_size=size, channels="GRAY" if channels == 1 else "RGB",
                input_name=input_name, output_name=output_name)
        for key, value in info.to_props().items():
            model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
