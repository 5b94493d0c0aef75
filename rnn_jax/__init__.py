"""rnn-jax: born-again self-distillation in JAX / Flax NNX for real-time gesture recognition.

Importing ``rnn_jax`` is cheap and JAX-free; the training API lives in ``rnn_jax.api``
(``from rnn_jax.api import ...``) so that the live program never pulls in JAX.
"""

__version__ = "0.1.0"
