"""JAX model -> one ONNX file for the JAX-free runtime, published only after a parity gate.

    from rnn_jax.export import export_run
    report = export_run("runs/demo", int8=True)
    print(report.table())

Needs the training install (JAX, jax2onnx); the runtime side (:mod:`rnn_jax.runtime`) does not.
One job per module, imports flowing down this list: ``errors``; ``convert`` (proto, value_info
fix, metadata), ``files`` (one self-contained file), ``parity`` (the gate), ``latency``;
``checked`` (one model -> a published file), ``report``, ``quantize`` (int8 copy);
``run`` (a run folder -> files + report); ``landmark_export`` (recurrent landmark models).
"""

from rnn_jax.export.checked import ExportResult, export_checked, export_model
from rnn_jax.export.errors import ExportError, ParityError
from rnn_jax.export.latency import LatencyStats, measure_latency
from rnn_jax.export.parity import DEFAULT_TOLERANCE, ParityResult, parity_check
from rnn_jax.export.report import ExportReport
from rnn_jax.export.run import export_run

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
