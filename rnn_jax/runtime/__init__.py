"""The JAX-free half of rnn-jax: load an exported ONNX model and classify images.

Import-light on purpose: ``rnn_jax.runtime.metadata`` is also used by the exporter, so
``Predictor`` (which needs onnxruntime) is only imported when first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rnn_jax.runtime.metadata import ModelInfo

if TYPE_CHECKING:
    from rnn_jax.runtime.predictor import Predictor, softmax

__all__ = ["ModelInfo", "Predictor", "softmax"]


def __getattr__(name: str) -> Any:
    if name in ("Predictor", "softmax"):
        from rnn_jax.runtime import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
