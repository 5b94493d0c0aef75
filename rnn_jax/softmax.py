"""Softmax, log-softmax and logsumexp in numpy: the one copy for the runtime, calibration and teachers.

Pure numpy (no JAX) because the live runtime imports it. Each subtracts the maximum first, so
large logits cannot overflow. ``dtype`` is the precision the work is done in: float64 by default
(calibration, ensembles, teacher rows), float32 where the runtime asks for it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike


def logsumexp(x: ArrayLike, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """``log(sum(exp(x)))`` along ``axis``, in ``x``'s own dtype."""
    x = np.asarray(x)
    top = np.max(x, axis=axis, keepdims=True)
    out = top + np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def _tempered(logits: ArrayLike, temperature: float, dtype: DTypeLike) -> np.ndarray:
    z = np.asarray(logits, dtype)
    return z if temperature == 1.0 else z / temperature


def log_softmax(logits: ArrayLike, axis: int = -1, temperature: float = 1.0,
                dtype: DTypeLike = np.float64) -> np.ndarray:
    """``log(softmax(logits / temperature))``, computed as ``z - logsumexp(z)``."""
    z = _tempered(logits, temperature, dtype)
    return z - logsumexp(z, axis=axis, keepdims=True)


def softmax(logits: ArrayLike, axis: int = -1, temperature: float = 1.0,
            dtype: DTypeLike = np.float64) -> np.ndarray:
    """Probabilities ``softmax(logits / temperature)`` along ``axis``, as ``dtype``."""
    z = _tempered(logits, temperature, dtype)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
