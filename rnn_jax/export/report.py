"""What an export measured, for people (:meth:`ExportReport.table`) and for files (the JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from rnn_jax.atomic import write_json_atomic
from rnn_jax.export.latency import LatencyStats
from rnn_jax.export.parity import ParityResult
from rnn_jax.export.quantize import Int8Report
from rnn_jax.runtime.metadata import ModelInfo


@dataclass
class ExportReport:
    """Everything ``export_run`` measured; ``table()`` for people, ``to_dict()`` for the JSON."""

    run_dir: str
    generation: int
    model_label: str
    onnx_path: str
    json_path: str
    info: ModelInfo
    params: int
    gflops_per_image: float
    file_bytes: int
    parity: ParityResult
    tolerance: float
    value_info_dropped: int
    latency: list[LatencyStats]
    int8: Int8Report | None = None  # when --int8
    timings_s: dict[str, float] = field(default_factory=dict)
    calibration: str = ""  # val ECE before / after the stored temperature (rnn_jax.calibration)

    def to_dict(self) -> dict:
        out = asdict(self)  # recurses into the nested dataclasses
        out["info"]["class_names"] = list(self.info.class_names)
        out["parity"]["passed"] = self.parity.passes(self.tolerance)
        out["versions"] = _versions()
        return out

    def table(self) -> str:
        int8 = self.int8
        rows: list[tuple[str, str, str]] = [
            ("parameters", f"{self.params:,}", ""),
            ("GFLOPs / image", f"{self.gflops_per_image:.4g}", ""),
            ("file size", format_size(self.file_bytes), format_size(int8.file_bytes) if int8 else ""),
            ("parity max |Δlogit| vs JAX", f"{self.parity.max_abs_logit_diff:.2e} (tol {self.tolerance:.0e})", ""),
            ("parity top-1 agreement vs JAX",
             f"{100 * self.parity.top1_agreement:.1f}% of {self.parity.n}", ""),
        ]
        q = {s.threads: s for s in int8.latency} if int8 else {}
        for s in self.latency:
            other = q.get(s.threads)
            rows.append((f"latency b=1, {_threads(s.threads)} p50 / p95", f"{s.p50_ms:.3f} / {s.p95_ms:.3f} ms",
                         f"{other.p50_ms:.3f} / {other.p95_ms:.3f} ms" if other else ""))
        if int8:
            rows += [(f"int8 speed-up (p50, {_threads(s.threads)})", "", f"{s.p50_ms / q[s.threads].p50_ms:.2f}x")
                     for s in self.latency if s.threads in q]
            rows += _int8_rows(int8)
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows + [("", "fp32", "")])
        body = [f"{a:{w0}}  {b:{w1}}  {c}".rstrip() for a, b, c in rows]
        header = f"{'':{w0}}  {'fp32':{w1}}" + ("  int8" if int8 else "")
        lines = [f"{self.run_dir} gen {self.generation} ({self.model_label}) -> {self.onnx_path}",
                 header.rstrip(), "-" * max(len(line) for line in body), *body]
        lines.append(f"latency: batch 1, Predictor.predict (cast + onnxruntime + softmax), median of "
                     f"{self.latency[0].repeats} rounds x {self.latency[0].iters} calls after warm-up"
                     if self.latency else "latency: not measured")
        if self.calibration:
            lines.append(f"calibration: {self.calibration}")
        if int8 and int8.latency and all(a.p50_ms < b.p50_ms for a, b in zip(self.latency, int8.latency)):
            lines.append("note: int8 is slower than fp32 here (quantize/dequantize overhead outweighs the "
                         "int8 arithmetic on a model this small); ship the fp32 file")
        return "\n".join(lines)


def _int8_rows(int8: Int8Report) -> list[tuple[str, str, str]]:
    """The accuracy and calibration rows of the int8 column."""
    delta = 100 * (int8.int8_acc - int8.fp32_acc)
    weights = "per-channel" if int8.per_channel else "per-tensor"
    if int8.selection:
        weights += " (" + ", ".join(f"{k} {100 * v:.1f}%" for k, v in int8.selection.items()) + " agree)"
    return [
        (f"val accuracy ({int8.n_eval} images)", f"{100 * int8.fp32_acc:.2f}%",
         f"{100 * int8.int8_acc:.2f}% ({delta:+.2f} pt)"),
        ("top-1 agreement with fp32", "", f"{100 * int8.agreement:.2f}%"),
        ("int8 calibration", "", f"static QDQ, {int8.calibration_images} training images"),
        ("int8 weights", "", weights),
    ]


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n > 1 else ''}"


def format_size(n: int) -> str:
    """File size for people: kB below a megabyte, MB above."""
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _versions() -> dict[str, str]:
    from importlib import metadata

    import rnn_jax

    out = {"rnn-jax": rnn_jax.__version__}
    for name in ("jax", "flax", "jax2onnx", "onnx", "onnxruntime"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_json_report(report: ExportReport, path: Path) -> None:
    """``report`` as indented JSON (atomically: a half-written report never carries the name)."""
    write_json_atomic(path, report.to_dict(), indent=2, default=str, end="\n")
