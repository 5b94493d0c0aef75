"""JAX model -> one ONNX file for the JAX-free runtime, published only after a parity gate.

    from rnn_jax.export import export_run
    report = export_run("runs/demo", int8=True)
    print(report.table())

Needs the training install (JAX, jax2onnx); the runtime side (:mod:`rnn_jax.runtime`) does not.
"""

from rnn_jax.export.onnx_export import (
    DEFAULT_TOLERANCE,
    ExportError,
    ExportReport,
    ExportResult,
    LatencyStats,
    ParityError,
    ParityResult,
    export_checked,
    export_model,
    export_run,
    measure_latency,
    parity_check,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "ExportError",
    "ExportReport",
    "ExportResult",
    "LatencyStats",
    "ParityError",
    "ParityResult",
    "export_checked",
    "export_model",
    "export_run",
    "measure_latency",
    "parity_check",
]
