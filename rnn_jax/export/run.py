"""A trained run on disk -> its published ONNX file(s), measured: the orchestration only.

Opens the run (:class:`rnn_jax.lineage.handle.Lineage`), builds the file's metadata, exports
through the parity gate (:mod:`~rnn_jax.export.checked`), optionally adds the int8 copy
(:mod:`~rnn_jax.export.quantize`), measures latency and writes the JSON report.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnn_jax.export.checked import Log, export_checked
from rnn_jax.export.convert import BATCH_DIM, DEFAULT_OPSET
from rnn_jax.export.errors import ExportError
from rnn_jax.export.latency import measure_latency
from rnn_jax.export.parity import DEFAULT_TOLERANCE
from rnn_jax.export.quantize import Int8Report, int8_path_for, quantize_and_compare
from rnn_jax.export.report import ExportReport, format_size, write_json_report
from rnn_jax.runtime.metadata import ModelInfo


def _sample(n_total: int, n: int, seed: int = 0) -> np.ndarray:
    """Sorted seeded subset of indices (the whole range when n >= n_total)."""
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


def calibration_summary(rule: Any) -> str:
    """The export summary's calibration line (ECE before / after the stored temperature)."""
    if rule is None:
        return "no validation logits in the run: temperature 1, no reject threshold stored"
    return rule.calibration_line()


def build_model_info(record: dict, gen: int, image_shape: tuple[int, int, int], rule: Any = None) -> ModelInfo:
    """The metadata for generation ``gen`` of a run, from its lineage.json record."""
    import rnn_jax
    from rnn_jax.lineage.record import generation_entry

    data = record["data"]
    entry = generation_entry(record, gen) or {}
    channels = {1: "GRAY", 3: "RGB"}.get(int(image_shape[2]))
    if channels is None:
        raise ExportError(f"the run's images have {image_shape[2]} channels; rnn-jax exports 1 (GRAY) or 3 (RGB)")
    label = record.get("model", {}).get("label") or record["config"]["model"]["name"]
    return ModelInfo(class_names=tuple(data["class_names"]), input_size=int(image_shape[0]),
                     channels=channels, crop_mode=data.get("crop_mode", "full"), model_name=label,
                     generation=int(gen), val_accuracy=float(entry.get("val_acc", float("nan"))),
                     run_name=record.get("name", ""), rnn_jax_version=rnn_jax.__version__,
                     reject_threshold=None if rule is None else rule.threshold,
                     temperature=1.0 if rule is None else rule.temperature)


def _int8_copy(out: Path, data: Any, calibration_images: int, log: Log) -> Int8Report:
    """The static int8 file beside ``out``, calibrated and judged on the run's own data."""
    # disjoint training subsets: one sets activation ranges, one picks per-channel or not
    order = np.random.default_rng(1).permutation(len(data.train))
    n_cal = min(calibration_images, len(order))
    calib = np.asarray(data.train.images[np.sort(order[:n_cal])])
    select = np.asarray(data.train.images[np.sort(order[n_cal:n_cal + 2 * calibration_images])])
    return quantize_and_compare(out, int8_path_for(out), calib, data.val.images, data.val.labels,
                                selection_images=select, log=log)


def export_run(run_dir: str | Path, gen: int | None = None, out: str | Path = "student.onnx",
               int8: bool = False, parity_images: int = 256, tolerance: float = DEFAULT_TOLERANCE,
               *, dataset: Any = None, data_path: str | None = None, latency_threads: tuple[int, ...] = (1, 2),
               latency_repeats: int = 5, calibration_images: int = 256, max_false_trigger: float | None = None,
               log: Log = print) -> ExportReport:
    """Export a run's final student (or generation ``gen``) and measure it.

    Parity runs on ``parity_images`` validation images of the run's own data (rebuilt from
    lineage.json, or ``dataset`` / ``data_path`` when given). ``int8`` adds a static QDQ
    int8 file beside the fp32 one (``student.int8.onnx``). The report is printed by the
    caller and written as JSON to ``<out>.json`` (e.g. ``student.onnx.json``).
    """
    from rnn_jax.calibration import reject_rule
    from rnn_jax.errors import ConfigError
    from rnn_jax.lineage.handle import Lineage
    from rnn_jax.models.registry import count_params, gflops_per_image

    if parity_images < 1:
        raise ConfigError(f"--parity-images must be >= 1, got {parity_images}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    lineage = Lineage(run_dir)
    record = lineage.record
    if gen is None:
        gen = lineage.final_generation
        if gen is None:
            raise ExportError(f"{run_dir} has no finished generation to export yet")
    finished = [g["gen"] for g in lineage.generations]
    if gen not in finished:
        raise ExportError(f"generation {gen} of {run_dir} is not finished; finished: {finished}")
    image_shape = tuple(int(d) for d in record["data"]["image_shape"])
    rule = reject_rule(run_dir, gen, record["data"]["class_names"], max_false_trigger, log)
    info = build_model_info(record, gen, image_shape, rule)
    log(f"run {run_dir}: generation {gen} ({info.model_name}, val acc {info.val_accuracy:.4f}), "
        f"{image_shape[0]}px {info.channels}, {len(info.class_names)} classes")
    model = lineage.load_model(gen, dtype="float32")  # export float32 whatever the training dtype
    data = dataset if dataset is not None else lineage.dataset(data_path)
    if tuple(data.image_shape) != image_shape or list(data.class_names) != list(info.class_names):
        raise ExportError(f"the data ({data.name}, {data.image_shape}) is not what {run_dir} was trained on "
                          f"({record['data']['name']}, {image_shape})")
    val_images = np.asarray(data.val.images[_sample(len(data.val), parity_images)])
    timings["load"] = time.perf_counter() - t0

    out = Path(out)
    log(f"exporting to {out} (opset {DEFAULT_OPSET}, batch axis symbolic '{BATCH_DIM}') ...")
    t0 = time.perf_counter()
    result = export_checked(model, image_shape, info, out, parity_images=val_images, tolerance=tolerance,
                            log=log)
    timings["export_and_parity"] = time.perf_counter() - t0
    log(f"  wrote {out} ({format_size(result.file_bytes)}, one file)")

    t0 = time.perf_counter()
    params = count_params(model)
    gflops = gflops_per_image(model, image_shape)
    timings["cost_analysis"] = time.perf_counter() - t0

    int8_report: Int8Report | None = None
    if int8:
        t0 = time.perf_counter()
        int8_report = _int8_copy(out, data, calibration_images, log)
        timings["int8"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    files = [out] + ([Path(int8_report.path)] if int8_report else [])
    log(f"measuring batch-1 latency ({', '.join(map(str, latency_threads))} thread(s)"
        f"{', fp32 and int8 in alternating rounds' if int8_report else ''}) ...")
    per_threads = [measure_latency(files, val_images[0], t, repeats=latency_repeats) for t in latency_threads]
    latency = [stats[0] for stats in per_threads]
    if int8_report:
        int8_report = dataclasses.replace(int8_report, latency=[stats[1] for stats in per_threads])
    timings["latency"] = time.perf_counter() - t0

    json_path = out.with_name(out.name + ".json")
    report = ExportReport(str(run_dir), int(gen), info.model_name, str(out), str(json_path), info, params,
                          gflops, result.file_bytes, result.parity, tolerance, result.value_info_dropped,
                          latency, int8_report, timings, calibration_summary(rule))
    write_json_report(report, json_path)
    return report
