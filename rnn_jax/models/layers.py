"""Small building blocks shared by the models (all exportable by jax2onnx)."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from rnn_jax.preprocess import PIXEL_OFFSET, PIXEL_SCALE


def normalize_pixels(x: jnp.ndarray, dtype) -> jnp.ndarray:
    """Pixels arrive as float 0..255; normalising inside the graph keeps run time trivial."""
    return (x.astype(jnp.float32) / PIXEL_SCALE - PIXEL_OFFSET).astype(dtype)


class DropPath(nnx.Module):
    """Stochastic depth: drop a whole residual branch per example (noisy student).

    A Dropout whose mask is broadcast over every axis but the batch does exactly that, and it
    is an identity in eval mode, so the exported graph carries no trace of it.
    """

    def __init__(self, rate: float, ndim: int, *, rngs: nnx.Rngs):
        self.drop = nnx.data(
            nnx.Dropout(rate, broadcast_dims=tuple(range(1, ndim)), rngs=rngs) if rate > 0 else None)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return x if self.drop is None else self.drop(x)
