"""The parity gate: the JAX model and the runtime's Predictor must agree on the same images.

The runtime side is :class:`rnn_jax.runtime.Predictor`, the very code the webcam program
uses (its own preprocessing and session), so a file that passes is right as shipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn_jax.errors import ModelFileError
from rnn_jax.export.errors import ExportError, ParityError
from rnn_jax.preprocess import to_model_input

DEFAULT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ParityResult:
    """JAX vs onnxruntime on the same images: the largest logit gap and top-1 agreement."""

    max_abs_logit_diff: float
    top1_agreement: float
    n: int

    def passes(self, tolerance: float = DEFAULT_TOLERANCE) -> bool:
        return (math.isfinite(self.max_abs_logit_diff) and self.max_abs_logit_diff <= tolerance
                and self.top1_agreement >= 1.0)

    def summary(self, tolerance: float | None = None) -> str:
        agree = round(self.top1_agreement * self.n)
        tol = f" (tolerance {tolerance:.0e})" if tolerance is not None else ""
        return (f"max |Δlogit| {self.max_abs_logit_diff:.2e}{tol}, top-1 agreement "
                f"{100 * self.top1_agreement:.1f}% ({agree}/{self.n})")


def jax_logits(model: Any, images_uint8: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The JAX model's logits (eval mode) on uint8 NHWC images, exactly as training fed them."""
    if hasattr(model, "eval"):
        model.eval()
    out = [np.asarray(model(to_model_input(images_uint8[i:i + batch_size])), dtype=np.float32)
           for i in range(0, len(images_uint8), batch_size)]
    return np.concatenate(out)


def runtime_logits(predictor: Any, images_uint8: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits through the runtime's own path: its preprocessing (colour, resize) then its session."""
    out = []
    for i in range(0, len(images_uint8), batch_size):
        prepared = predictor.preprocess(list(images_uint8[i:i + batch_size]), colour="rgb")
        out.append(predictor.predict_logits(to_model_input(prepared)))
    return np.concatenate(out)


def parity_check(model: Any, onnx_path: str | Path, images_uint8: np.ndarray,
                 threads: int | None = None) -> ParityResult:
    """Compare ``model`` (JAX, eval mode) with ``onnx_path`` loaded by the runtime Predictor.

    Raises :class:`ExportError` if the file does not load in the runtime at all.
    """
    from rnn_jax.runtime.predictor import Predictor

    images = np.asarray(images_uint8)
    if images.ndim != 4 or images.dtype != np.uint8 or not len(images):
        raise ExportError(f"parity needs a non-empty uint8 NHWC batch, got {images.dtype} {images.shape}")
    try:
        predictor = Predictor.load(onnx_path, threads=threads)
    except ModelFileError as exc:
        raise ExportError(f"the exported file does not load in the runtime: {exc}") from None
    reference = jax_logits(model, images)
    return compare_logits(runtime_logits(predictor, images), reference)


def compare_logits(got: np.ndarray, reference: np.ndarray) -> ParityResult:
    """onnxruntime's logits ``got`` vs JAX's ``reference`` ([N, C] each), in float64."""
    if got.shape != reference.shape:
        raise ParityError(f"onnxruntime gave logits of shape {got.shape}, JAX {reference.shape}")
    diff = np.abs(got.astype(np.float64) - reference.astype(np.float64))
    max_diff = float(np.max(diff)) if np.all(np.isfinite(diff)) else float("inf")
    agreement = float(np.mean(got.argmax(1) == reference.argmax(1)))
    return ParityResult(max_diff, agreement, len(got))


def require_parity(result: ParityResult, tolerance: float, what: str = "the export") -> None:
    """The gate: raise :class:`ParityError` unless ``result`` passes."""
    if not result.passes(tolerance):
        raise ParityError(f"parity gate refused {what}: {result.summary(tolerance)} on {result.n} images "
                          f"(needs max |Δlogit| <= {tolerance:.0e} and 100% top-1 agreement)")
