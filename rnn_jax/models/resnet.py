"""CIFAR-style ResNets (basic blocks), from tiny CPU presets to ResNet-18/34."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from flax import nnx
from jax import lax

from rnn_jax.models.layers import DropPath, normalize_pixels


def _conv(cin: int, cout: int, kernel: int, stride: int, dtype, conv: Callable, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(cin, cout, (kernel, kernel), strides=(stride, stride), padding="SAME",
                    use_bias=False, dtype=dtype, conv_general_dilated=conv, rngs=rngs)


def _bn(features: int, dtype, rngs: nnx.Rngs) -> nnx.BatchNorm:
    # momentum 0.9: generations are short, running statistics must settle within an epoch or two
    return nnx.BatchNorm(features, momentum=0.9, dtype=dtype, rngs=rngs)


class BasicBlock(nnx.Module):
    def __init__(self, cin: int, cout: int, stride: int, drop_path: float, dtype, conv: Callable,
                 rngs: nnx.Rngs):
        self.conv1, self.bn1 = _conv(cin, cout, 3, stride, dtype, conv, rngs), _bn(cout, dtype, rngs)
        self.conv2, self.bn2 = _conv(cout, cout, 3, 1, dtype, conv, rngs), _bn(cout, dtype, rngs)
        needs_projection = stride != 1 or cin != cout
        self.shortcut = nnx.data(
            nnx.Sequential(_conv(cin, cout, 1, stride, dtype, conv, rngs), _bn(cout, dtype, rngs))
            if needs_projection else None)
        self.drop_path = DropPath(drop_path, 4, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = self.drop_path(self.bn2(self.conv2(y)))
        skip = x if self.shortcut is None else self.shortcut(x)
        return nnx.relu(y + skip)


def stem_stride_for(image_size: int) -> int:
    """Downsample early for big inputs so compute stays proportional to a 32x32 CIFAR net."""
    if image_size <= 40:
        return 1
    if image_size <= 80:
        return 2
    return 4


class ResNet(nnx.Module):
    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, widths: tuple[int, ...],
                 blocks: tuple[int, ...], *, dropout: float = 0.0, stochastic_depth: float = 0.0,
                 dtype=jnp.float32, conv: Callable = lax.conv_general_dilated, rngs: nnx.Rngs):
        """``conv``: the convolution function (``rnn_jax.kernels.conv_function`` picks it)."""
        self.dtype = dtype
        stride = stem_stride_for(image_shape[0])
        self.stem = _conv(image_shape[2], widths[0], 3, min(stride, 2), dtype, conv, rngs)
        self.stem_bn = _bn(widths[0], dtype, rngs)
        self.stem_pool = stride == 4
        total, done, layers = sum(blocks), 0, []
        cin = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks)):
            for i in range(count):
                rate = stochastic_depth * done / max(total - 1, 1)  # linear decay rule
                layers.append(BasicBlock(cin, width, 2 if (i == 0 and stage > 0) else 1, rate, dtype, conv, rngs))
                cin, done = width, done + 1
        self.blocks = nnx.List(layers)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.head = nnx.Linear(cin, num_classes, dtype=dtype, rngs=rngs)

    def features(self, x: jnp.ndarray) -> jnp.ndarray:
        x = nnx.relu(self.stem_bn(self.stem(normalize_pixels(x, self.dtype))))
        if self.stem_pool:
            x = nnx.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding="SAME")
        for block in self.blocks:
            x = block(x)
        return jnp.mean(x, axis=(1, 2))

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return self.head(self.dropout(self.features(x))).astype(jnp.float32)
