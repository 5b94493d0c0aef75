"""Real-time gesture recognition: ``python -m rnn_jax.live`` and a small notebook API.

JAX-free: only numpy, OpenCV and onnxruntime. Heavy pieces are imported on first use,
so ``rnn_jax.live.sources`` (used by ``rnn_jax.capture``) does not pull in onnxruntime.

    from rnn_jax.live import iter_predictions
    for rec in iter_predictions("student.onnx", 0, max_frames=100):
        print(rec.label, rec.confidence)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnn_jax.live.loop import PredictionStream, iter_predictions
    from rnn_jax.live.results import FrameResult, RunSummary
    from rnn_jax.live.settings import LiveConfig, default_live_threads
    from rnn_jax.live.smoothing import (
        GestureConfig,
        GestureEvent,
        GestureState,
        GestureTracker,
        SmoothingConfig,
    )
    from rnn_jax.live.sources import FrameSource, open_source

_EXPORTS = {
    "iter_predictions": "loop", "PredictionStream": "loop", "FrameResult": "records",
    "LiveConfig": "settings", "RunSummary": "records", "default_live_threads": "settings",
    "GestureConfig": "smoothing", "GestureEvent": "smoothing", "GestureState": "smoothing",
    "GestureTracker": "smoothing", "SmoothingConfig": "smoothing",
    "FrameSource": "sources", "open_source": "sources",
}
__all__ = [
    "FrameResult", "FrameSource", "GestureConfig", "GestureEvent", "GestureState",
    "GestureTracker", "LiveConfig", "PredictionStream", "RunSummary", "SmoothingConfig",
    "default_live_threads", "iter_predictions", "open_source",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"rnn_jax.live.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
