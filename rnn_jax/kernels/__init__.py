"""Native CPU kernels XLA calls through its FFI (today: oneDNN convolutions).

``conv_function("auto")`` is what the models use: oneDNN on CPU when the kernel can be built
here, XLA's convolution otherwise and on other platforms.
"""

from rnn_jax.kernels.build import KernelStatus, load
from rnn_jax.kernels.conv import CONV_BACKENDS, conv_function, onednn_conv_general_dilated

__all__ = ["CONV_BACKENDS", "KernelStatus", "conv_function", "load", "onednn_conv_general_dilated"]
