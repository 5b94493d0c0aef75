"""A plain MLP: the fastest baseline, and the model the distillation tests use."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from rnn_jax.models.layers import normalize_pixels


class MLP(nnx.Module):
    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, hidden: tuple[int, ...],
                 *, dropout: float = 0.0, dtype=jnp.float32, rngs: nnx.Rngs):
        self.dtype = dtype
        sizes = (image_shape[0] * image_shape[1] * image_shape[2], *hidden)
        self.layers = nnx.List([nnx.Linear(a, b, dtype=dtype, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.head = nnx.Linear(sizes[-1], num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = normalize_pixels(x, self.dtype).reshape(x.shape[0], -1)
        for layer in self.layers:
            x = nnx.relu(layer(x))
        return self.head(self.dropout(x)).astype(jnp.float32)
