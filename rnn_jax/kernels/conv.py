"""A drop-in for ``lax.conv_general_dilated`` whose CPU work (forward, data and kernel gradients)
runs in oneDNN, while other platforms keep XLA's convolution.

Why: on CPU this is what closes the gap to PyTorch's training step (docs/performance.md). The
choice is made per lowering platform (``lax.platform_dependent``), so one model definition is
right on CPU and GPU; cases the kernel does not cover (dtypes other than float32, dilation,
groups, layouts other than NHWC/HWIO) go to XLA unchanged.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from rnn_jax.errors import ConfigError
from rnn_jax.kernels.build import TARGET, load

CONV_BACKENDS = ("auto", "xla", "onednn")
FORWARD, DATA_GRADIENT, KERNEL_GRADIENT = 0, 1, 2  # the kernel's `kind` attribute
_LAYOUT = ("NHWC", "HWIO", "NHWC")

Pads = tuple[tuple[int, int], tuple[int, int]]


def conv_function(backend: str) -> Callable:
    """The convolution to build models with: ``auto`` = oneDNN where it can be built, else XLA."""
    if backend not in CONV_BACKENDS:
        raise ConfigError(f"unknown convolution backend {backend!r}; choose from {CONV_BACKENDS}")
    if backend == "xla":
        return lax.conv_general_dilated
    status = load()
    if status.available:
        return onednn_conv_general_dilated
    if backend == "onednn":
        raise ConfigError(f"oneDNN convolutions are not available: {status.reason}")
    warnings.warn(f"rnn-jax: using XLA's convolutions (slower on CPU): {status.reason}",
                  RuntimeWarning, stacklevel=2)
    return lax.conv_general_dilated


def _xla_conv(x: jax.Array, w: jax.Array, strides: tuple[int, int], pads: Pads) -> jax.Array:
    return lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_LAYOUT)


def _kernel(kind: int, out_shape: tuple[int, ...], strides: tuple[int, int], pads: Pads,
            a: jax.Array, b: jax.Array) -> jax.Array:
    (top, bottom), (left, right) = pads
    call = jax.ffi.ffi_call(TARGET, jax.ShapeDtypeStruct(out_shape, jnp.float32))
    return call(a, b, kind=np.int64(kind), stride_h=np.int64(strides[0]), stride_w=np.int64(strides[1]),
                pad_top=np.int64(top), pad_bottom=np.int64(bottom), pad_left=np.int64(left),
                pad_right=np.int64(right))


def _output_shape(x_shape: Sequence[int], w_shape: Sequence[int], strides: tuple[int, int],
                  pads: Pads) -> tuple[int, int, int, int]:
    spatial = [(x_shape[1 + i] + sum(pads[i]) - w_shape[i]) // strides[i] + 1 for i in range(2)]
    return (x_shape[0], *spatial, w_shape[3])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x: jax.Array, w: jax.Array, strides: tuple[int, int], pads: Pads) -> jax.Array:
    out_shape = _output_shape(x.shape, w.shape, strides, pads)
    return lax.platform_dependent(
        x, w, cpu=functools.partial(_kernel, FORWARD, out_shape, strides, pads),
        default=functools.partial(_xla_conv, strides=strides, pads=pads))


def _conv_forward(x, w, strides, pads):
    return _conv(x, w, strides, pads), (x, w)


def _conv_backward(strides, pads, residuals, dy):
    x, w = residuals

    def xla_data_gradient(dy, w):
        return jax.vjp(lambda x: _xla_conv(x, w, strides, pads), x)[1](dy)[0]

    def xla_kernel_gradient(x, dy):
        return jax.vjp(lambda w: _xla_conv(x, w, strides, pads), w)[1](dy)[0]

    dx = lax.platform_dependent(dy, w, cpu=functools.partial(_kernel, DATA_GRADIENT, x.shape, strides, pads),
                                default=xla_data_gradient)
    dw = lax.platform_dependent(x, dy, cpu=functools.partial(_kernel, KERNEL_GRADIENT, w.shape, strides, pads),
                                default=xla_kernel_gradient)
    return dx, dw


_conv.defvjp(_conv_forward, _conv_backward)


def _explicit_pads(lhs_shape, rhs_shape, strides, padding) -> Pads | None:
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs_shape[1:3], rhs_shape[:2], strides, padding)
    pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    return pads if len(pads) == 2 and min(min(p) for p in pads) >= 0 else None


def onednn_conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                                dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                                precision=None, preferred_element_type=None, **kwargs):
    """``lax.conv_general_dilated`` with the same signature; oneDNN on CPU where it applies."""
    strides = tuple(int(s) for s in window_strides)
    pads = None
    supported = (
        load().available  # registers the kernel with XLA (once per process)
        and lhs.ndim == 4 and rhs.ndim == 4 and lhs.dtype == jnp.float32 and rhs.dtype == jnp.float32
        and dimension_numbers is not None
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _LAYOUT)
        and all(d == 1 for d in (lhs_dilation or (1, 1))) and all(d == 1 for d in (rhs_dilation or (1, 1)))
        and feature_group_count == 1 and batch_group_count == 1 and preferred_element_type in (None, jnp.float32)
        and all(v is None for v in kwargs.values()) and lhs.shape[0] > 0
        and lhs.shape[3] == rhs.shape[2]
    )
    if supported:
        pads = _explicit_pads(lhs.shape, rhs.shape, strides, padding)
    if pads is None:
        return lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, batch_group_count, precision=precision,
            preferred_element_type=preferred_element_type, **kwargs)
    return _conv(lhs, rhs, strides, pads)
