"""A plain convolutional net (conv-BN-ReLU-pool stages, then a dense layer): the classic
small-image CNN. It fits a 10k-image training set almost perfectly in a few CPU minutes,
which is the regime where self-distillation regularises (Mobahi et al. 2020); the
distillation study uses it on Fashion-MNIST (docs/distillation.md)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from flax import nnx
from jax import lax

from rnn_jax.models.layers import normalize_pixels
from rnn_jax.models.resnet import stem_stride_for


def max_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
    """2x2 max pooling as a reshape + max (an odd last row/column is dropped, like VALID pooling).

    XLA:CPU runs ``reduce_window``'s gradient (select-and-scatter) several times slower than
    this form's elementwise gradient; the results are the same.
    """
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class CNN(nnx.Module):
    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, widths: tuple[int, ...],
                 hidden: int, *, dropout: float = 0.0, dtype=jnp.float32,
                 conv: Callable = lax.conv_general_dilated, rngs: nnx.Rngs):
        """``conv``: the convolution function (``rnn_jax.kernels.conv_function`` picks it)."""
        self.dtype = dtype
        self.first_stride = min(stem_stride_for(image_shape[0]), 2)  # big inputs: keep the dense layer small
        convs, norms, cin = [], [], image_shape[2]
        for i, width in enumerate(widths):
            stride = self.first_stride if i == 0 else 1
            convs.append(nnx.Conv(cin, width, (3, 3), strides=(stride, stride), padding="SAME", use_bias=False,
                                  dtype=dtype, conv_general_dilated=conv, rngs=rngs))
            norms.append(nnx.BatchNorm(width, momentum=0.9, dtype=dtype, rngs=rngs))
            cin = width
        self.convs, self.norms = nnx.List(convs), nnx.List(norms)
        self.hint_channels = cin  # channels of hint_features' output
        side_h, side_w = image_shape[0], image_shape[1]
        for i in range(len(widths)):
            if i == 0:
                side_h, side_w = -(-side_h // self.first_stride), -(-side_w // self.first_stride)
            side_h, side_w = side_h // 2, side_w // 2
        self.dense = nnx.Linear(side_h * side_w * cin, hidden, dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.head = nnx.Linear(hidden, num_classes, dtype=dtype, rngs=rngs)

    def hint_features(self, x: jnp.ndarray) -> jnp.ndarray:
        """The last conv stage's output [B, h, w, C] (after pooling): FitNets' hint / guided layer."""
        x = normalize_pixels(x, self.dtype)
        for conv, norm in zip(self.convs, self.norms):
            x = max_pool_2x2(nnx.relu(norm(conv(x))))
        return x

    def features_and_logits(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """(hint features, logits) from one forward pass."""
        features = self.hint_features(x)
        x = nnx.relu(self.dense(features.reshape(features.shape[0], -1)))
        return features, self.head(self.dropout(x)).astype(jnp.float32)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return self.features_and_logits(x)[1]
