"""JAX model -> one self-contained ONNX file that the JAX-free runtime can trust.

The export is only published after a parity gate: the same real images go through the JAX
model and through :class:`rnn_jax.runtime.Predictor` (the very code the webcam program
uses), and the file is refused unless the logits agree to ``tolerance`` and every top-1
prediction matches. Until then it lives under a temporary name beside the destination,
so a failed export never leaves a file that looks usable.

Known jax2onnx quirk handled here: for convolutional graphs the exported
``graph.value_info`` records NHWC shapes for tensors that are NCHW after its layout
conversion. onnxruntime then warns (small ResNets) or refuses to load the file (ResNet-18
residual ``Add``s). Shape annotations are optional hints, so when any of them contradicts
ONNX's own shape inference they are all dropped (:func:`drop_bad_value_info`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from rnn_jax.errors import ModelFileError
from rnn_jax.preprocess import to_model_input
from rnn_jax.runtime.metadata import PREFIX, ModelInfo

# Opset 18 / IR 9 files load in every onnxruntime >= 1.17, the floor the live install
# allows (pyproject); jax2onnx's default (opset 23, IR 10) would need a much newer one.
DEFAULT_OPSET = 18
MAX_IR_VERSION = 9
DEFAULT_TOLERANCE = 1e-4
BATCH_DIM = "B"
_PROTOBUF_LIMIT = 2**31 - 1  # a single ONNX file cannot exceed this (protobuf limit)

Log = Callable[[str], None]


class ExportError(ModelFileError):
    """The model could not be turned into a trustworthy ONNX file (nothing was published)."""


class ParityError(ExportError):
    """The exported graph disagrees with the JAX model beyond the tolerance."""


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------- conversion
def to_onnx_proto(model: Any, image_shape: tuple[int, int, int], *, input_name: str = "images",
                  output_name: str = "logits", opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Trace ``model`` (switched to eval mode) into an in-memory ModelProto.

    The batch axis is the symbolic ``"B"`` so one file serves batch 1 (live) and batched
    evaluation; H, W, C stay static. ``return_mode="proto"`` keeps every weight inside the
    proto, so no ``.onnx.data`` sidecar can appear.
    """
    from jax2onnx import to_onnx  # heavy import, only when exporting

    if hasattr(model, "eval"):
        model.eval()  # BatchNorm on running statistics, Dropout / DropPath as identities
    try:
        proto = to_onnx(model, [(BATCH_DIM, *image_shape)], input_names=[input_name],
                        output_names=[output_name], opset=opset, return_mode="proto",
                        model_name="rnn_jax_student")
    except Exception as exc:  # jax2onnx raises many types for unsupported primitives
        raise ExportError(f"jax2onnx could not convert the model: {type(exc).__name__}: {exc}") from exc
    proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)
    return proto


def _shape_of(value_info: onnx.ValueInfoProto) -> tuple[int, list[int | str | None] | None]:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return t.elem_type, None
    return t.elem_type, [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                         for d in t.shape.dim]


def value_info_conflicts(proto: onnx.ModelProto) -> list[str]:
    """Names of ``graph.value_info`` entries that contradict ONNX shape inference."""
    if not len(proto.graph.value_info):
        return []
    bare = onnx.ModelProto()
    bare.CopyFrom(proto)
    del bare.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(bare, data_prop=True)
    except Exception:  # inference itself failing is no reason to trust the annotations
        return [vi.name for vi in proto.graph.value_info]
    known = {vi.name: _shape_of(vi) for vi in inferred.graph.value_info}
    bad = []
    for vi in proto.graph.value_info:
        if vi.name not in known:
            continue
        (etype, dims), (ref_type, ref_dims) = _shape_of(vi), known[vi.name]
        if etype and ref_type and etype != ref_type:
            bad.append(vi.name)
        elif dims is not None and ref_dims is not None:
            if len(dims) != len(ref_dims) or any(
                    isinstance(a, int) and isinstance(b, int) and a and b and a != b
                    for a, b in zip(dims, ref_dims)):
                bad.append(vi.name)
    return bad


def drop_bad_value_info(proto: onnx.ModelProto) -> tuple[int, int]:
    """Delete all shape annotations if any is wrong; returns (conflicting, dropped) counts.

    All go, not just the detected ones: a layout mix-up that inference could not check
    would be just as wrong, and onnxruntime infers every shape itself anyway.
    """
    bad = value_info_conflicts(proto)
    if not bad:
        return 0, 0
    dropped = len(proto.graph.value_info)
    del proto.graph.value_info[:]
    return len(bad), dropped


def set_metadata(proto: onnx.ModelProto, info: ModelInfo) -> None:
    """Replace any ``rnn_jax.*`` metadata with ``info`` (other keys are kept)."""
    keep = [(p.key, p.value) for p in proto.metadata_props if not p.key.startswith(PREFIX)]
    del proto.metadata_props[:]
    for key, value in [*keep, *info.to_props().items()]:
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    proto.producer_name = "rnn-jax (jax2onnx)"


def stamp_and_check(proto: onnx.ModelProto, info) -> None:
    """Write ``info``'s metadata into the graph, then refuse a graph that is not valid ONNX.
    ``info``: any metadata object with ``to_props`` (ModelInfo, LandmarkInfo)."""
    set_metadata(proto, info)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph is not valid ONNX: {str(exc).splitlines()[0]}") from None


def save_single_file(proto: onnx.ModelProto, path: Path) -> None:
    """Write with every tensor embedded, then prove it: no external-data reference, no sidecar."""
    if proto.ByteSize() > _PROTOBUF_LIMIT:
        raise ExportError(f"the model is {proto.ByteSize() / 1e9:.1f} GB; one ONNX file holds at most 2 GB")
    onnx.save_model(proto, str(path), save_as_external_data=False)
    written = onnx.load(str(path), load_external_data=False)
    external = [t.name for t in written.graph.initializer
                if onnx.external_data_helper.uses_external_data(t)]
    if external:
        raise ExportError(f"{path} still refers to external data for {external[:3]}; expected one file")


def _temp_beside(dest: Path, suffix: str = ".onnx") -> Path:
    """A unique hidden temp path in the destination folder (same file system -> atomic rename)."""
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    return Path(name)


def publish(tmp: Path, dest: Path) -> Path:
    """Atomically move a checked temp file to its final name (with normal, umask-based permissions)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it owner-only
    os.replace(tmp, dest)
    return dest


# ------------------------------------------------------------------------------ parity
@dataclass(frozen=True)
class ParityResult:
    """JAX vs onnxruntime on the same images: the largest logit gap and top-1 agreement."""

    max_abs_logit_diff: float
    top1_agreement: float
    n: int

    def passes(self, tolerance: float = DEFAULT_TOLERANCE) -> bool:
        return (math.isfinite(self.max_abs_logit_diff) and self.max_abs_logit_diff <= tolerance
                and self.top1_agreement >= 1.0)

    def summary(self, tolerance: float | None = None) -> str:
        agree = round(self.top1_agreement * self.n)
        tol = f" (tolerance {tolerance:.0e})" if tolerance is not None else ""
        return (f"max |Δlogit| {self.max_abs_logit_diff:.2e}{tol}, top-1 agreement "
                f"{100 * self.top1_agreement:.1f}% ({agree}/{self.n})")


def jax_logits(model: Any, images_uint8: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The JAX model's logits (eval mode) on uint8 NHWC images, exactly as training fed them."""
    if hasattr(model, "eval"):
        model.eval()
    out = [np.asarray(model(to_model_input(images_uint8[i:i + batch_size])), dtype=np.float32)
           for i in range(0, len(images_uint8), batch_size)]
    return np.concatenate(out)


def runtime_logits(predictor: Any, images_uint8: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits through the runtime's own path: its preprocessing (colour, resize) then its session."""
    out = []
    for i in range(0, len(images_uint8), batch_size):
        prepared = predictor.preprocess(list(images_uint8[i:i + batch_size]), colour="rgb")
        out.append(predictor.predict_logits(to_model_input(prepared)))
    return np.concatenate(out)


def parity_check(model: Any, onnx_path: str | Path, images_uint8: np.ndarray,
                 threads: int | None = None) -> ParityResult:
    """Compare ``model`` (JAX, eval mode) with ``onnx_path`` loaded by the runtime Predictor.

    Raises :class:`ExportError` if the file does not load in the runtime at all.
    """
    from rnn_jax.runtime.predictor import Predictor

    images = np.asarray(images_uint8)
    if images.ndim != 4 or images.dtype != np.uint8 or not len(images):
        raise ExportError(f"parity needs a non-empty uint8 NHWC batch, got {images.dtype} {images.shape}")
    try:
        predictor = Predictor.load(onnx_path, threads=threads)
    except ModelFileError as exc:
        raise ExportError(f"the exported file does not load in the runtime: {exc}") from None
    reference = jax_logits(model, images)
    got = runtime_logits(predictor, images)
    if got.shape != reference.shape:
        raise ParityError(f"onnxruntime gave logits of shape {got.shape}, JAX {reference.shape}")
    diff = np.abs(got.astype(np.float64) - reference.astype(np.float64))
    max_diff = float(np.max(diff)) if np.all(np.isfinite(diff)) else float("inf")
    agreement = float(np.mean(got.argmax(1) == reference.argmax(1)))
    return ParityResult(max_diff, agreement, len(images))


def require_parity(result: ParityResult, tolerance: float, what: str = "the export") -> None:
    """The gate: raise :class:`ParityError` unless ``result`` passes."""
    if not result.passes(tolerance):
        raise ParityError(f"parity gate refused {what}: {result.summary(tolerance)} on {result.n} images "
                          f"(needs max |Δlogit| <= {tolerance:.0e} and 100% top-1 agreement)")


# ------------------------------------------------------------------------------ export
@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_checked` did: the published file and the evidence it is right."""

    path: Path
    parity: ParityResult
    tolerance: float
    value_info_conflicts: int  # annotations that contradicted shape inference (0 = none)
    value_info_dropped: int  # annotations removed because of them
    file_bytes: int
    export_s: float


def _check_info(info: ModelInfo, image_shape: tuple[int, int, int]) -> None:
    h, w, c = image_shape
    if h != w:
        raise ExportError(f"rnn-jax models take square images; this one takes {h}x{w}")
    if info.input_size != h or info.num_channels != c:
        raise ExportError(f"metadata says {info.input_size}px {info.channels} but the model takes "
                          f"{h}x{w}x{c}")


def export_checked(model: Any, image_shape: tuple[int, int, int], info: ModelInfo,
                   out_path: str | Path, *, parity_images: np.ndarray | None = None,
                   tolerance: float = DEFAULT_TOLERANCE, opset: int = DEFAULT_OPSET,
                   log: Log = _quiet) -> ExportResult:
    """Export, gate on parity, then publish ``out_path`` (see :func:`export_model`)."""
    image_shape = tuple(int(d) for d in image_shape)
    _check_info(info, image_shape)
    if not tolerance > 0:
        raise ExportError(f"tolerance must be > 0, got {tolerance}")
    dest = Path(out_path)
    if dest.is_dir():
        raise ExportError(f"--out {dest} is a folder; give a file name such as {dest / 'student.onnx'}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if parity_images is None:  # no real data at hand: seeded noise still catches a wrong graph
        parity_images = np.random.default_rng(0).integers(0, 256, (32, *image_shape), dtype=np.uint8)

    t0 = time.perf_counter()
    proto = to_onnx_proto(model, image_shape, input_name=info.input_name,
                          output_name=info.output_name, opset=opset)
    conflicts, dropped = drop_bad_value_info(proto)
    if conflicts:
        log(f"  value_info fix: {conflicts} shape annotation(s) contradicted shape inference "
            f"(jax2onnx NHWC/NCHW mix-up); dropped all {dropped}")
    stamp_and_check(proto, info)
    export_s = time.perf_counter() - t0

    tmp = _temp_beside(dest)
    try:
        save_single_file(proto, tmp)
        parity = parity_check(model, tmp, parity_images)
        log(f"  parity on {parity.n} images: {parity.summary(tolerance)}")
        require_parity(parity, tolerance, f"{dest}" + (" (the existing file there was left unchanged)"
                                                       if dest.exists() else " (nothing was written)"))
        size = tmp.stat().st_size
        publish(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(dest, parity, tolerance, conflicts, dropped, size, export_s)


def export_model(model: Any, image_shape: tuple[int, int, int], info: ModelInfo,
                 out_path: str | Path, *, parity_images: np.ndarray | None = None,
                 tolerance: float = DEFAULT_TOLERANCE) -> Path:
    """Export ``model`` (float32 NHWC 0..255 ``images`` [B,H,W,C] -> ``logits``) to one ONNX file.

    ``info`` is written into the file's metadata so the runtime picks the right labels and
    preprocessing. The file appears at ``out_path`` only after the parity gate passes on
    ``parity_images`` (uint8 NHWC; real images, ideally; seeded noise when None);
    otherwise :class:`ParityError` is raised and ``out_path`` is untouched.
    """
    return export_checked(model, image_shape, info, out_path, parity_images=parity_images,
                          tolerance=tolerance).path


# ----------------------------------------------------------------------------- latency
@dataclass(frozen=True)
class LatencyStats:
    """Batch-1 wall time of ``Predictor.predict`` (cast + session + softmax), in ms."""

    threads: int
    p50_ms: float
    p95_ms: float
    repeats: int
    iters: int


def measure_latency(onnx_paths: str | Path | Sequence[str | Path], image_uint8: np.ndarray, threads: int, *,
                    repeats: int = 5, budget_s: float = 0.4, warmup: int = 10) -> list[LatencyStats]:
    """p50/p95 of single-image predictions: the median over ``repeats`` rounds after warm-up.

    Several files (fp32 and int8) are measured in alternating rounds, so a neighbour
    process loading the shared CPU slows both alike and their ratio stays meaningful.
    Each round runs for about ``budget_s`` (20..500 calls); the median over rounds damps
    the remaining noise. Returns one LatencyStats per file, in order.
    """
    from rnn_jax.runtime.predictor import Predictor

    paths = [onnx_paths] if isinstance(onnx_paths, (str, Path)) else list(onnx_paths)
    batch = np.asarray(image_uint8)[None]
    predictors, iters = [], []
    for path in paths:
        predictor = Predictor.load(path, threads=threads)
        for _ in range(warmup):
            predictor.predict(batch)
        t0 = time.perf_counter()
        predictor.predict(batch)
        one = max(time.perf_counter() - t0, 1e-6)
        predictors.append(predictor)
        iters.append(int(min(500, max(20, budget_s / one))))
    p50s: list[list[float]] = [[] for _ in paths]
    p95s: list[list[float]] = [[] for _ in paths]
    for _ in range(repeats):
        for k, predictor in enumerate(predictors):
            times = np.empty(iters[k])
            for i in range(iters[k]):
                t0 = time.perf_counter()
                predictor.predict(batch)
                times[i] = time.perf_counter() - t0
            p50s[k].append(float(np.percentile(times, 50)) * 1e3)
            p95s[k].append(float(np.percentile(times, 95)) * 1e3)
    return [LatencyStats(threads, statistics.median(p50s[k]), statistics.median(p95s[k]), repeats, iters[k])
            for k in range(len(paths))]


# ------------------------------------------------------------------------------ report
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
    int8: Any = None  # rnn_jax.export.quantize.Int8Report when --int8
    timings_s: dict[str, float] = field(default_factory=dict)

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
            ("file size", _size(self.file_bytes), _size(int8.file_bytes) if int8 else ""),
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
            delta = 100 * (int8.int8_acc - int8.fp32_acc)
            weights = "per-channel" if int8.per_channel else "per-tensor"
            if int8.selection:
                weights += " (" + ", ".join(f"{k} {100 * v:.1f}%" for k, v in int8.selection.items()) + " agree)"
            rows += [
                (f"val accuracy ({int8.n_eval} images)", f"{100 * int8.fp32_acc:.2f}%",
                 f"{100 * int8.int8_acc:.2f}% ({delta:+.2f} pt)"),
                ("top-1 agreement with fp32", "", f"{100 * int8.agreement:.2f}%"),
                ("int8 calibration", "", f"static QDQ, {int8.calibration_images} training images"),
                ("int8 weights", "", weights),
            ]
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows + [("", "fp32", "")])
        body = [f"{a:{w0}}  {b:{w1}}  {c}".rstrip() for a, b, c in rows]
        header = f"{'':{w0}}  {'fp32':{w1}}" + ("  int8" if int8 else "")
        lines = [f"{self.run_dir} gen {self.generation} ({self.model_label}) -> {self.onnx_path}",
                 header.rstrip(), "-" * max(len(line) for line in body), *body]
        lines.append(f"latency: batch 1, Predictor.predict (cast + onnxruntime + softmax), median of "
                     f"{self.latency[0].repeats} rounds x {self.latency[0].iters} calls after warm-up"
                     if self.latency else "latency: not measured")
        if int8 and int8.latency and all(a.p50_ms < b.p50_ms for a, b in zip(self.latency, int8.latency)):
            lines.append("note: int8 is slower than fp32 here (quantize/dequantize overhead outweighs the "
                         "int8 arithmetic on a model this small); ship the fp32 file")
        return "\n".join(lines)


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n > 1 else ''}"


def _size(n: int) -> str:
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
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _sample(n_total: int, n: int, seed: int = 0) -> np.ndarray:
    """Sorted seeded subset of indices (the whole range when n >= n_total)."""
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


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
    from rnn_jax.api import Lineage
    from rnn_jax.errors import ConfigError
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
    from rnn_jax.calibration import reject_rule

    info = build_model_info(record, gen, image_shape,
                            reject_rule(run_dir, gen, record["data"]["class_names"], max_false_trigger, log))
    log(f"run {run_dir}: generation {gen} ({info.model_name}, val acc {info.val_accuracy:.4f}), "
        f"{image_shape[0]}px {info.channels}, {len(info.class_names)} classes")
    model = lineage.load_model(gen, dtype="float32")  # export float32 whatever the training dtype
    data = dataset if dataset is not None else lineage.dataset(data_path)
    if tuple(data.image_shape) != image_shape or list(data.class_names) != list(info.class_names):
        raise ExportError(f"the data ({data.name}, {data.image_shape}) is not what {run_dir} was trained on "
                          f"({record['data']['name']}, {image_shape})")
    val_idx = _sample(len(data.val), parity_images)
    val_images = np.asarray(data.val.images[val_idx])
    timings["load"] = time.perf_counter() - t0

    out = Path(out)
    log(f"exporting to {out} (opset {DEFAULT_OPSET}, batch axis symbolic '{BATCH_DIM}') ...")
    t0 = time.perf_counter()
    result = export_checked(model, image_shape, info, out, parity_images=val_images, tolerance=tolerance,
                            log=log)
    timings["export_and_parity"] = time.perf_counter() - t0
    log(f"  wrote {out} ({_size(result.file_bytes)}, one file)")

    t0 = time.perf_counter()
    params = count_params(model)
    gflops = gflops_per_image(model, image_shape)
    timings["cost_analysis"] = time.perf_counter() - t0

    int8_report = None
    if int8:
        from rnn_jax.export.quantize import int8_path_for, quantize_and_compare

        t0 = time.perf_counter()
        # disjoint training subsets: one sets activation ranges, one picks per-channel or not
        order = np.random.default_rng(1).permutation(len(data.train))
        n_cal = min(calibration_images, len(order))
        calib = np.asarray(data.train.images[np.sort(order[:n_cal])])
        select = np.asarray(data.train.images[np.sort(order[n_cal:n_cal + 2 * calibration_images])])
        int8_report = quantize_and_compare(out, int8_path_for(out), calib, data.val.images, data.val.labels,
                                           selection_images=select, log=log)
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
                          latency, int8_report, timings)
    write_json_report(report, json_path)
    return report
