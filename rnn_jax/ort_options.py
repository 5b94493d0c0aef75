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
