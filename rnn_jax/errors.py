"""User-facing errors: the CLIs print these as one readable line instead of a traceback."""

from __future__ import annotations


class RnnJaxError(Exception):
    """Base class for problems the user can fix (bad input, bad config, missing data)."""


class ConfigError(RnnJaxError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DataError(RnnJaxError):
    """A data set is missing, empty or laid out in a way we cannot read."""


class ModelFileError(RnnJaxError):
    """An ONNX file is missing, corrupt, not made by rnn-jax, or inconsistent."""


class ResumeError(RnnJaxError):
    """`--resume` points at a run that does not match the requested one."""


class SourceError(RnnJaxError):
    """A camera, video file, image folder or stream cannot be opened."""


class StorageError(RnnJaxError):
    """A file could not be written (disk full, no permission); what was saved before is intact."""
