"""JAX model -> in-memory ONNX proto: tracing, the value_info fix, metadata stamping.

Known jax2onnx quirk handled here: for convolutional graphs the exported
``graph.value_info`` records NHWC shapes for tensors that are NCHW after its layout
conversion. onnxruntime then warns (small ResNets) or refuses to load the file (ResNet-18
residual ``Add``s). Shape annotations are optional hints, so when any of them contradicts
ONNX's own shape inference they are all dropped (:func:`drop_bad_value_info`).
"""

from __future__ import annotations

from typing import Any

import onnx

from rnn_jax.export.errors import ExportError
from rnn_jax.runtime.metadata import PREFIX, ModelInfo

# Opset 18 / IR 9 files load in every onnxruntime >= 1.17, the floor the live install
# allows (pyproject); jax2onnx's default (opset 23, IR 10) would need a much newer one.
DEFAULT_OPSET = 18
MAX_IR_VERSION = 9
BATCH_DIM = "B"


def to_onnx_proto(model: Any, image_shape: tuple[int, int, int], *, input_name: str = "images",
                  output_name: str = "logits", opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Trace ``model`` (switched to eval mode) into an in-memory ModelProto.

    The batch axis is the symbolic ``"B"`` so one file serves batch 1 (live) and batched
    evaluation; H, W, C stay static. ``return_mode="proto"`` keeps every weight inside the
    proto, so no ``.onnx.data`` sidecar can appear.
    """
    if hasattr(model, "eval"):
        model.eval()  # BatchNorm on running statistics, Dropout / DropPath as identities
    return trace(model, [(BATCH_DIM, *image_shape)], [input_name], [output_name], opset=opset,
                 model_name="rnn_jax_student")


def trace(fn: Any, inputs: list, input_names: list[str], output_names: list[str], *,
          opset: int = DEFAULT_OPSET, model_name: str, **options: Any) -> onnx.ModelProto:
    """jax2onnx's ``to_onnx`` as a proto (weights inside), any failure one ExportError, IR <= 9."""
    from jax2onnx import to_onnx  # heavy import, only when exporting

    try:
        proto = to_onnx(fn, inputs, input_names=input_names, output_names=output_names, opset=opset,
                        return_mode="proto", model_name=model_name, **options)
    except Exception as exc:  # jax2onnx raises many types for unsupported primitives
        raise ExportError(f"jax2onnx could not convert the model: {type(exc).__name__}: {exc}") from exc
    proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)
    return proto


def _shape_of(value_info: onnx.ValueInfoProto) -> tuple[int, list[int | str | None] | None]:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return t.elem_type, None
    return t.elem_type, [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                         for d in t.shape.dim]


def value_info_conflicts(proto: onnx.ModelProto) -> list[str]:
    """Names of ``graph.value_info`` entries that contradict ONNX shape inference."""
    if not len(proto.graph.value_info):
        return []
    bare = onnx.ModelProto()
    bare.CopyFrom(proto)
    del bare.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(bare, data_prop=True)
    except Exception:  # inference itself failing is no reason to trust the annotations
        return [vi.name for vi in proto.graph.value_info]
    known = {vi.name: _shape_of(vi) for vi in inferred.graph.value_info}
    bad = []
    for vi in proto.graph.value_info:
        if vi.name not in known:
            continue
        (etype, dims), (ref_type, ref_dims) = _shape_of(vi), known[vi.name]
        if etype and ref_type and etype != ref_type:
            bad.append(vi.name)
        elif dims is not None and ref_dims is not None:
            if len(dims) != len(ref_dims) or any(
                    isinstance(a, int) and isinstance(b, int) and a and b and a != b
                    for a, b in zip(dims, ref_dims)):
                bad.append(vi.name)
    return bad


def drop_bad_value_info(proto: onnx.ModelProto) -> tuple[int, int]:
    """Delete all shape annotations if any is wrong; returns (conflicting, dropped) counts.

    All go, not just the detected ones: a layout mix-up that inference could not check
    would be just as wrong, and onnxruntime infers every shape itself anyway.
    """
    bad = value_info_conflicts(proto)
    if not bad:
        return 0, 0
    dropped = len(proto.graph.value_info)
    del proto.graph.value_info[:]
    return len(bad), dropped


def set_metadata(proto: onnx.ModelProto, info: ModelInfo) -> None:
    """Replace any ``rnn_jax.*`` metadata with ``info`` (other keys are kept)."""
    keep = [(p.key, p.value) for p in proto.metadata_props if not p.key.startswith(PREFIX)]
    del proto.metadata_props[:]
    for key, value in [*keep, *info.to_props().items()]:
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    proto.producer_name = "rnn-jax (jax2onnx)"


def stamp_and_check(proto: onnx.ModelProto, info) -> None:
    """Write ``info``'s metadata into the graph, then refuse a graph that is not valid ONNX.
    ``info``: any metadata object with ``to_props`` (ModelInfo, LandmarkInfo)."""
    set_metadata(proto, info)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph is not valid ONNX: {str(exc).splitlines()[0]}") from None
