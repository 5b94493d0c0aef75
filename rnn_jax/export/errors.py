"""Export's two errors: nothing trustworthy could be written, or the parity gate said no."""

from __future__ import annotations

from rnn_jax.errors import ModelFileError


class ExportError(ModelFileError):
    """The model could not be turned into a trustworthy ONNX file (nothing was published)."""


class ParityError(ExportError):
    """The exported graph disagrees with the JAX model beyond the tolerance."""
