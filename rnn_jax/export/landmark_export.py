"""Landmark model -> one ONNX file with its recurrent state as explicit input and output.

Why explicit state: onnxruntime runs one frame per call in the live loop, so the graph is the
model's per-frame ``step``: ``(landmarks [B, 21, 3], state [B, S]) -> (logits [B, C],
state_out [B, S])``; the caller carries ``state_out`` into the next frame (one state per
hand) and resets it to zeros. The metadata (:class:`rnn_jax.runtime.landmark_predictor.LandmarkInfo`)
says so, with the feature rule. Stateless models (lmlp) export ``landmarks -> logits``.

Parity gate: a sequence of at least 50 frames goes through the JAX model *scanned*
(``jax.lax.scan`` over the frames, from a zero state) and through onnxruntime *step by step*
with the state carried in numpy; every frame's logits must agree to the tolerance (default
1e-4) with the same top-1, or nothing is published.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn_jax.atomic import write_json_atomic, writing
from rnn_jax.errors import ConfigError
from rnn_jax.export.checked import quiet
from rnn_jax.export.convert import BATCH_DIM, DEFAULT_OPSET, stamp_and_check, trace
from rnn_jax.export.errors import ExportError
from rnn_jax.export.files import save_single_file
from rnn_jax.export.parity import DEFAULT_TOLERANCE, ParityResult, compare_logits, require_parity
from rnn_jax.hands.features import NUM_LANDMARKS
from rnn_jax.runtime.landmark_predictor import LandmarkInfo

MIN_PARITY_FRAMES = 50


def state_layout(model: Any) -> str:
    """A sentence for the metadata: how the model packs its state."""
    name = type(model).__name__
    if name == "LandmarkLSTM":
        return f"[B, {model.num_layers} layers x (h, c) x {model.hidden}] flattened, layer-major"
    if name == "LandmarkTRM":
        return f"[B, (y: {model.dim}, z: {model.dim})]: answer and latent of the previous frame"
    return "none"


def step_function(model: Any):
    """A plain function of arrays for jax2onnx: the model's per-frame step, weights closed over."""
    from flax import nnx

    model.eval()
    graphdef, state = nnx.split(model)
    if getattr(model, "state_size", 0):
        def step(landmarks, state_in):
            return nnx.merge(graphdef, state).step(landmarks, state_in)
    else:
        def step(landmarks):
            return nnx.merge(graphdef, state).step(landmarks, None)[0]
    return step


def scanned_logits(model: Any, frames: np.ndarray) -> np.ndarray:
    """The JAX model over a sequence [T, 21, 3] with ``lax.scan`` (batch 1, zero start): [T, C]."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    model.eval()
    graphdef, weights = nnx.split(model)
    size = int(getattr(model, "state_size", 0))

    def body(carry, frame):
        logits, new = nnx.merge(graphdef, weights).step(frame[None], carry)
        return (carry if new is None else new), logits[0]

    _, logits = jax.jit(lambda xs: jax.lax.scan(body, jnp.zeros((1, size), jnp.float32), xs))(
        jnp.asarray(frames, jnp.float32))
    return np.asarray(logits, np.float32)


def stepped_logits(onnx_path: str | Path, frames: np.ndarray) -> np.ndarray:
    """The ONNX file through the runtime, one frame per call, state carried: [T, C]."""
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor

    predictor = LandmarkPredictor.load(onnx_path, threads=1)
    state = predictor.initial_state(1)
    out = []
    for frame in frames:
        logits, state = predictor.step(frame[None], state)
        out.append(logits[0])
    return np.stack(out)


def sequence_parity(model: Any, onnx_path: str | Path, frames: np.ndarray) -> ParityResult:
    """Every frame's logits: JAX scanned over the sequence vs the file stepped frame by frame."""
    reference = scanned_logits(model, frames)
    return compare_logits(stepped_logits(onnx_path, frames), reference)


@dataclass(frozen=True)
class LandmarkExportResult:
    path: Path
    parity: ParityResult
    tolerance: float
    file_bytes: int
    export_s: float


def export_landmark_model(model: Any, info: LandmarkInfo, out_path: str | Path, parity_frames: np.ndarray,
                          tolerance: float = DEFAULT_TOLERANCE, opset: int = DEFAULT_OPSET,
                          log=quiet) -> LandmarkExportResult:
    """Export ``model``'s step with explicit state, gate on sequence parity, then publish."""
    frames = np.asarray(parity_frames, np.float32)
    if frames.ndim != 3 or frames.shape[1:] != (NUM_LANDMARKS, 3) or len(frames) < MIN_PARITY_FRAMES:
        raise ConfigError(f"the parity gate needs >= {MIN_PARITY_FRAMES} frames [T, 21, 3], got {list(frames.shape)}")
    size = int(getattr(model, "state_size", 0))
    if size != info.state_size:
        raise ExportError(f"metadata says state size {info.state_size}, the model has {size}")
    dest = Path(out_path)
    if dest.is_dir():
        raise ExportError(f"--out {dest} is a folder; give a file name such as {dest / 'landmarks.onnx'}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    inputs: list = [(BATCH_DIM, NUM_LANDMARKS, 3)] + ([(BATCH_DIM, size)] if size else [])
    names_in = [info.input_name] + ([info.state_input] if size else [])
    names_out = [info.output_name] + ([info.state_output] if size else [])
    proto = trace(step_function(model), inputs, names_in, names_out, opset=opset, model_name="rnn_jax_landmarks",
                  # one LayerNormalization node instead of ~9 (the TRM has 27): measured
                  # 0.43-0.52 vs 0.67-0.95 ms per frame on a busy 2-core CPU
                  normalization_mode="prefer_native")
    stamp_and_check(proto, info)
    export_s = time.perf_counter() - t0
    with writing(dest, ".onnx") as tmp:  # published when the block ends, removed if it raises
        save_single_file(proto, tmp)
        parity = sequence_parity(model, tmp, frames)
        log(f"  parity over a {len(frames)}-frame sequence (JAX scanned vs ONNX step by step): "
            f"{parity.summary(tolerance)}")
        require_parity(parity, tolerance, f"{dest}")
        size_bytes = tmp.stat().st_size
    return LandmarkExportResult(dest, parity, tolerance, size_bytes, export_s)


def measure_step_latency(onnx_path: str | Path, frame: np.ndarray, threads: int = 1, calls: int = 2000,
                         repeats: int = 5, features=None) -> dict[str, float]:
    """Batch-1 latency of one frame (feature rule excluded / included), median of ``repeats`` rounds, ms.

    ``features``: the model's feature rule, frame [1, 21, 3] -> model input (default: the
    landmark rule of the file's metadata; the motion model passes its own)."""
    from rnn_jax.hands.features import landmark_features
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor

    predictor = LandmarkPredictor.load(onnx_path, threads=threads)
    x = np.asarray(frame, np.float32)[None]
    if features is None:
        def features(frame_batch):
            return landmark_features(frame_batch, None, predictor.spec)
    state = predictor.initial_state(1)
    for _ in range(50):
        _, state = predictor.step(x, state)
    model_ms, total_ms = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            _, state = predictor.step(x, state)
        model_ms.append((time.perf_counter() - t0) / calls * 1e3)
        t0 = time.perf_counter()
        for _ in range(calls):
            _, state = predictor.step(features(x), state)
        total_ms.append((time.perf_counter() - t0) / calls * 1e3)
    return {"threads": threads, "step_ms": float(np.median(model_ms)), "features_and_step_ms": float(np.median(total_ms))}


def export_landmark_run(run_dir: str | Path, gen: int | None = None, out: str | Path = "landmarks.onnx",
                        tolerance: float = DEFAULT_TOLERANCE, parity_frames: int = 64, data_path: str | None = None,
                        latency: bool = True, max_false_trigger: float | None = None, log=print) -> dict:
    """Export a landmark run's final student (or ``gen``); returns a report dict (also <out>.json)."""
    import rnn_jax
    from rnn_jax.calibration import reject_rule
    from rnn_jax.export.run import calibration_summary
    from rnn_jax.lineage.handle import Lineage
    from rnn_jax.lineage.record import generation_entry
    from rnn_jax.models.registry import count_params

    lineage = Lineage(run_dir)
    record = lineage.record
    gen = lineage.final_generation if gen is None else gen
    if gen is None:
        raise ExportError(f"{run_dir} has no finished generation to export yet")
    model = lineage.load_model(gen, dtype="float32")
    notes = record["data"].get("notes", {}).get("landmarks", {})
    entry = generation_entry(record, gen) or {}
    class_names = tuple(record["data"]["class_names"])
    rule = reject_rule(run_dir, gen, class_names, max_false_trigger, log)
    info = LandmarkInfo(class_names=tuple(record["data"]["class_names"]), features=notes.get("features", {}),
                        state_size=int(getattr(model, "state_size", 0)), state_layout=state_layout(model),
                        model_name=record.get("model", {}).get("label", ""), generation=int(gen),
                        val_accuracy=float(entry.get("val_acc", float("nan"))), run_name=record.get("name", ""),
                        rnn_jax_version=rnn_jax.__version__,
                        reject_threshold=None if rule is None else rule.threshold,
                        temperature=1.0 if rule is None else rule.temperature)
    data = lineage.dataset(data_path)
    val = np.asarray(data.val.images, np.float32)  # [N, T, 21, 3] features
    frames = val.reshape(-1, NUM_LANDMARKS, 3)
    if len(frames) < parity_frames:
        frames = np.concatenate([frames] * (parity_frames // len(frames) + 1))
    frames = frames[:max(parity_frames, MIN_PARITY_FRAMES)]
    log(f"run {run_dir}: generation {gen} ({info.model_name}, state {info.state_size}) -> {out}")
    result = export_landmark_model(model, info, out, frames, tolerance, log=log)
    report = {"run_dir": str(run_dir), "generation": gen, "model": info.model_name, "onnx": str(result.path),
              "params": count_params(model), "state_size": info.state_size, "state_layout": info.state_layout,
              "file_bytes": result.file_bytes, "parity_frames": result.parity.n,
              "parity_max_abs_logit_diff": result.parity.max_abs_logit_diff,
              "parity_top1_agreement": result.parity.top1_agreement, "tolerance": tolerance,
              "val_acc": info.val_accuracy, "calibration": calibration_summary(rule),
              "reject_rule": None if rule is None else rule.to_dict()}
    if latency:
        report["latency_b1"] = measure_step_latency(result.path, frames[0])
    write_json_atomic(Path(str(result.path) + ".json"), report, indent=2, end="\n")
    return report
