"""Sections that time the deployed model: exported ONNX latency and the headless live loop."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tools.benchkit.context import LIVE_MODEL, Context, load1
from tools.benchkit.report import Section, fmt, ratio
from tools.benchkit.step_sections import sld
from tools.benchkit.timing import alternate, load, progress


def onnx_models(quick: bool) -> list[tuple[str, str, int]]:
    if quick:
        return [("resnet", "tiny", 32)]
    return [LIVE_MODEL, ("resnet", "tiny", 64), ("resnet", "small", 64), ("resnet18", "default", 64),
            ("vit", "tiny", 64), ("mlp", "small", 64)]


def export_fresh(ctx: Context, name: str, size: str, px: int, classes: int = 10) -> tuple[Path, Path]:
    """Export a freshly initialised registry model (fp32, parity-gated) plus its static int8 copy."""
    from rnn_jax.models.registry import model_spec

    key = ("onnx", name, size, px)
    if key in ctx.cache:
        return ctx.cache[key]
    from rnn_jax.export import export_model
    from rnn_jax.export.quantize import quantize_int8
    from rnn_jax.models.registry import create_model
    from rnn_jax.runtime.metadata import ModelInfo

    spec = model_spec(name, size)
    model = create_model(spec, (px, px, 3), classes, seed=0)
    info = ModelInfo(class_names=tuple(str(i) for i in range(classes)), input_size=px, channels="RGB",
                     crop_mode="full", model_name=spec.label, run_name="bench (freshly initialised)")
    out = ctx.workdir / "onnx" / f"{spec.label}-{px}.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    export_model(model, (px, px, 3), info, out)
    if ctx.data_root is not None:
        calibration = np.asarray(sld(ctx, px).train.images[:64 if ctx.quick else 256])
    else:
        from rnn_jax.data.builtin import make_builtin_gestures

        calibration = make_builtin_gestures(image_size=px, per_class=20).train.images
    int8 = out.with_name(out.stem + ".int8.onnx")
    quantize_int8(out, int8, calibration)
    ctx.cache[key] = (out, int8)
    return out, int8


def section_onnx(ctx: Context) -> Section:
    """Batch-1 latency of exported models: fp32 vs int8, 1 and 2 onnxruntime threads."""
    from rnn_jax.export import measure_latency
    from rnn_jax.models.registry import model_spec

    sec = Section("onnx", "ONNX batch-1 latency (Predictor.predict: cast + session + softmax), ms",
                  ["model", "px", "threads", "fp32 p50", "fp32 p95", "int8 p50", "int8 p95", "int8 speed-up",
                   "load 1m"])
    for name, size, px in onnx_models(ctx.quick):
        label = model_spec(name, size).label
        progress(f"onnx: exporting {label} {px}px (fp32 + static int8)")
        fp32, int8 = export_fresh(ctx, name, size, px)
        image = np.random.default_rng(0).integers(0, 256, (px, px, 3), dtype=np.uint8)
        for threads in sorted({1, min(2, os.cpu_count() or 1)}):
            stats = measure_latency([fp32, int8], image, threads, repeats=3 if ctx.quick else 5,
                                    budget_s=0.2 if ctx.quick else 0.5)
            a, b = stats
            rec = {"model": label, "image_size": px, "threads": threads, "fp32_p50_ms": a.p50_ms,
                   "fp32_p95_ms": a.p95_ms, "int8_p50_ms": b.p50_ms, "int8_p95_ms": b.p95_ms, "load": load(),
                   "fp32_bytes": fp32.stat().st_size, "int8_bytes": int8.stat().st_size}
            sec.add([label, str(px), str(threads), fmt(a.p50_ms, 3), fmt(a.p95_ms, 3), fmt(b.p50_ms, 3),
                     fmt(b.p95_ms, 3), fmt(ratio(a.p50_ms, b.p50_ms), 2, "x"), f"{load1():.1f}"], rec)
            ctx.cache.setdefault("onnx_rows", []).append(rec)
    sec.notes.append("freshly initialised weights (latency does not depend on them); fp32 and int8 measured in "
                     "alternating rounds by rnn_jax.export.measure_latency; int8 = static QDQ, calibrated on "
                     "training images")
    return sec


def _predictor(path: Path, threads: int, spinning: bool = True):
    """A runtime Predictor, optionally with onnxruntime's spin-waiting of idle threads turned off."""
    from rnn_jax.runtime.predictor import Predictor

    if spinning:
        return Predictor.load(path, threads=threads)
    import onnxruntime as ort

    from rnn_jax.runtime.metadata import ModelInfo

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    info = ModelInfo.from_props(dict(session.get_modelmeta().custom_metadata_map), source=str(path))
    predictor = Predictor(session, info, path)
    predictor._warmup()
    return predictor


def section_live(ctx: Context) -> Section:
    """End-to-end live loop (headless) on a video file: frames/s for onnxruntime settings."""
    import cv2

    from rnn_jax.live import iter_predictions
    from rnn_jax.models.registry import model_spec

    sec = Section("live", "Live loop on a video file, headless (decode + preprocess + model + smoothing)",
                  ["variant", "frames/s", "model p50 ms", "loop p50 ms", "spread", "load 1m"])
    if ctx.video is None:
        sec.skipped = "../shared/data/video/Megamind.avi is absent"
        return sec
    name, size, px = ("resnet", "tiny", 32) if ctx.quick else LIVE_MODEL
    progress(f"live: exporting the live model {model_spec(name, size).label} {px}px")
    fp32, int8 = export_fresh(ctx, name, size, px)
    max_frames = 60 if ctx.quick else None
    summaries: dict[str, list] = {}

    def video_only() -> float:
        cap = cv2.VideoCapture(str(ctx.video))
        n = 0
        while max_frames is None or n < max_frames:
            ok, _ = cap.read()
            if not ok:
                break
            n += 1
        cap.release()
        return float(n)

    def live(path: Path, threads: int, spinning: bool, label: str) -> Callable[[], float]:
        predictor = _predictor(path, threads, spinning)

        def work() -> float:
            with iter_predictions(predictor, str(ctx.video), max_frames=max_frames) as stream:
                n = sum(1 for _ in stream)
                summaries.setdefault(label, []).append(stream.summary())
            return float(n)

        return work

    cands: dict[str, Callable[[], float]] = {"video decode only (ceiling)": video_only}
    variants = [(fp32, 1, True, "fp32, 1 thread (default_live_threads on 2 cores)"),
                (fp32, 2, True, "fp32, 2 threads"),
                (fp32, 1, False, "fp32, 1 thread, no spin-wait"),
                (fp32, 2, False, "fp32, 2 threads, no spin-wait"),
                (int8, 1, True, "int8, 1 thread")]
    for path, threads, spinning, label in variants:
        cands[label] = live(path, threads, spinning, label)
    progress(f"live: {len(cands)} variants on {ctx.video.name}, alternating")
    res = alternate(cands, 1 if ctx.quick else 3, warmup=0 if ctx.quick else 1)
    for label, m in res.items():
        sums = summaries.get(label, [])
        lat = float(np.median([s.latency_p50_ms for s in sums])) if sums else None
        loop_ms = float(np.median([s.loop_p50_ms for s in sums])) if sums else None
        rec = {"variant": label, "fps": m.median, "model_p50_ms": lat, "loop_p50_ms": loop_ms, **m.to_dict(),
               "load": load()}
        sec.add([label, fmt(m.median, 1), fmt(lat, 2), fmt(loop_ms, 2), f"{m.spread:.0%}", f"{load1():.1f}"], rec)
    cap = cv2.VideoCapture(str(ctx.video))
    w, h, n = int(cap.get(3)), int(cap.get(4)), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    sec.notes.append(f"{ctx.video.name}: {n} frames of {w}x{h}; model {model_spec(name, size).label} {px}px, freshly "
                     "initialised; frames/s = frames / wall time of the whole pass (rnn_jax.live.iter_predictions)")
    return sec
