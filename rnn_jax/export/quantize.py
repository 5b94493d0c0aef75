"""Optional int8 copy of an exported model: static QDQ quantization with onnxruntime.

Static (calibrated) rather than dynamic: dynamic int8 only quantizes weights of
MatMul/Gemm and was *slower* than fp32 for convolutions on this kind of CPU, while static
QDQ quantizes the convolutions too (stack notes: ResNet-18 27 ms -> 8 ms at batch 1).
Activation ranges come from real training images fed through the runtime's input
convention, and the result is always a *second* file (``student.int8.onnx``) carrying
the same metadata, so the fp32 model is never replaced by a less accurate one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from rnn_jax.atomic import publish, writing
from rnn_jax.export.checked import Log
from rnn_jax.export.errors import ExportError
from rnn_jax.export.files import save_single_file
from rnn_jax.export.latency import LatencyStats
from rnn_jax.preprocess import to_model_input


def int8_path_for(fp32_path: str | Path) -> Path:
    """``student.onnx`` -> ``student.int8.onnx`` (beside it)."""
    p = Path(fp32_path)
    return p.with_name(f"{p.stem}.int8{p.suffix or '.onnx'}")


class ImageCalibrationReader:
    """Feeds uint8 NHWC images to the calibrator as float32 0..255 batches (the model's input)."""

    def __init__(self, images_uint8: np.ndarray, input_name: str = "images", batch_size: int = 32):
        self.images = np.asarray(images_uint8)
        self.input_name = input_name
        self.batch_size = batch_size
        self._it: Iterator[dict[str, np.ndarray]] = self._batches()

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(0, len(self.images), self.batch_size):
            yield {self.input_name: to_model_input(self.images[i:i + self.batch_size])}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = self._batches()


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calibration_images: np.ndarray,
                  *, per_channel: bool = True) -> Path:
    """Write a static QDQ int8 version of ``fp32_path`` to ``out_path`` (one file, same metadata).

    uint8 activations with int8 weights and no range reduction: the combination
    onnxruntime recommends for x86 CPUs with VNNI (the integer dot-product instructions).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    source = onnx.load(str(fp32_path))
    if not len(calibration_images):
        raise ExportError("int8 calibration needs at least one training image")
    input_name = source.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="rnn_jax_int8_") as work:
        prepared, quantized = Path(work) / "prepared.onnx", Path(work) / "quantized.onnx"
        try:
            # shape inference + graph optimisation (e.g. BatchNorm folded into Conv) first,
            # as onnxruntime advises, so the quantizer sees the graph that will actually run
            quant_pre_process(str(fp32_path), str(prepared))
            quantize_static(str(prepared), str(quantized), ImageCalibrationReader(calibration_images, input_name),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            reduce_range=False, calibrate_method=CalibrationMethod.MinMax)
        except Exception as exc:  # the quantizer raises assorted types for graphs it cannot handle
            raise ExportError(f"int8 quantization failed: {type(exc).__name__}: {exc}") from exc
        model = onnx.load(str(quantized))
    del model.metadata_props[:]
    for prop in source.metadata_props:  # the quantizer does not promise to keep them
        model.metadata_props.append(onnx.StringStringEntryProto(key=prop.key, value=prop.value))
    with writing(out_path, ".onnx") as tmp:
        save_single_file(model, tmp)
    return out_path


def predict_labels(onnx_path: str | Path, images_uint8: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Top-1 class per image via the runtime Predictor (so the int8 file is checked as shipped)."""
    from rnn_jax.runtime.predictor import Predictor

    predictor = Predictor.load(onnx_path)
    out = [predictor.predict(np.asarray(images_uint8[i:i + batch_size])).argmax(1)
           for i in range(0, len(images_uint8), batch_size)]
    return np.concatenate(out)


@dataclass(frozen=True)
class Int8Report:
    """int8 vs fp32 on validation images, plus the int8 file's batch-1 latency (filled by export_run)."""

    path: str
    file_bytes: int
    per_channel: bool
    calibration_images: int
    n_eval: int
    fp32_acc: float
    int8_acc: float
    agreement: float  # fraction of images where int8 and fp32 pick the same class
    latency: list[LatencyStats] = field(default_factory=list)
    selection: dict[str, float] = field(default_factory=dict)  # per-channel vs per-tensor trial


def _agreement(a_path: str | Path, b_path: str | Path, images: np.ndarray) -> float:
    return float(np.mean(predict_labels(a_path, images) == predict_labels(b_path, images)))


def choose_per_channel(fp32_path: str | Path, out_path: Path, calibration_images: np.ndarray,
                       selection_images: np.ndarray, log: Log = print) -> tuple[bool, dict[str, float]]:
    """Quantize both ways; keep per-channel weights only if they track fp32 better.

    Judged by top-1 agreement with the fp32 file on ``selection_images`` (training images
    not used for calibration, so the validation numbers reported later stay unbiased).
    A tie goes to per-tensor, which onnxruntime documents as the faster of the two.
    ``out_path`` holds the winner afterwards.
    """
    scores: dict[str, float] = {}
    trial = out_path.with_name(f".{out_path.name}.per-channel-trial.onnx")
    try:
        quantize_int8(fp32_path, out_path, calibration_images, per_channel=False)
        scores["per-tensor"] = _agreement(fp32_path, out_path, selection_images)
        quantize_int8(fp32_path, trial, calibration_images, per_channel=True)
        scores["per-channel"] = _agreement(fp32_path, trial, selection_images)
        per_channel = scores["per-channel"] > scores["per-tensor"]
        if per_channel:
            publish(trial, out_path)
    finally:
        trial.unlink(missing_ok=True)
    log(f"  agreement with fp32 on {len(selection_images)} held-out training images: "
        + ", ".join(f"{k} {100 * v:.2f}%" for k, v in scores.items())
        + f" -> {'per-channel' if per_channel else 'per-tensor'}")
    return per_channel, scores


def quantize_and_compare(fp32_path: str | Path, out_path: str | Path, calibration_images: np.ndarray,
                         eval_images: np.ndarray, eval_labels: np.ndarray, *,
                         selection_images: np.ndarray | None = None, per_channel: bool | None = None,
                         max_eval: int = 5000, log: Log = print) -> Int8Report:
    """Quantize, then report accuracy against labels and agreement with the fp32 file.

    ``per_channel=None`` picks per-channel or per-tensor weights with
    :func:`choose_per_channel` on ``selection_images`` (per-channel if none are given).
    """
    out_path = Path(out_path)
    log(f"int8: static QDQ, calibrating on {len(calibration_images)} training images ...")
    selection: dict[str, float] = {}
    if per_channel is None and selection_images is not None and len(selection_images):
        per_channel, selection = choose_per_channel(fp32_path, out_path, calibration_images,
                                                    selection_images, log)
    else:
        per_channel = True if per_channel is None else per_channel
        quantize_int8(fp32_path, out_path, calibration_images, per_channel=per_channel)
    n = min(len(eval_labels), max_eval)
    images, labels = np.asarray(eval_images[:n]), np.asarray(eval_labels[:n])
    fp32_pred, int8_pred = predict_labels(fp32_path, images), predict_labels(out_path, images)
    fp32_acc, int8_acc = float(np.mean(fp32_pred == labels)), float(np.mean(int8_pred == labels))
    agreement = float(np.mean(fp32_pred == int8_pred))
    log(f"  wrote {out_path}; val accuracy fp32 {100 * fp32_acc:.2f}% -> int8 {100 * int8_acc:.2f}% "
        f"({100 * (int8_acc - fp32_acc):+.2f} pt), top-1 agreement with fp32 {100 * agreement:.2f}% "
        f"on {n} images")
    return Int8Report(str(out_path), out_path.stat().st_size, per_channel, len(calibration_images), n,
                      fp32_acc, int8_acc, agreement, selection=selection)
