"""onnxruntime session options shared by every JAX-free model loader (classifier, landmark
model, hand finder), so they all log and thread alike."""

from __future__ import annotations

import onnxruntime as ort


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Errors only (warnings would interleave with live output); one inter-op thread (our graphs
    are single chains); ``threads`` intra-op threads, or onnxruntime's choice when None."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    return options


DEVICE_ENV = "RNN_JAX_HANDS_DEVICE"


def hand_model_providers(device: str | None = None) -> list[str]:
    """Execution providers for the hand models: CUDA first when onnxruntime-gpu offers it and
    ``device`` (default ``$RNN_JAX_HANDS_DEVICE``, else "auto") is "auto" or "cuda"; else CPU.

    Why a choice: extracting a million HaGRID photos on a GPU machine wants the GPU, while the
    live loop on a laptop has only the CPU build (where "auto" is the CPU)."""
    import os

    from rnn_jax.errors import ConfigError

    device = (device or os.environ.get(DEVICE_ENV) or "auto").lower()
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"${DEVICE_ENV} must be auto, cpu or cuda, got {device!r}")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not has_cuda:
        raise ConfigError(f"${DEVICE_ENV}=cuda but this onnxruntime has no CUDA provider "
                          "(pip install onnxruntime-gpu in place of onnxruntime)")
    return (["CUDAExecutionProvider"] if has_cuda and device != "cpu" else []) + ["CPUExecutionProvider"]
