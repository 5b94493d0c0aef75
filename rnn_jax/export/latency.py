"""Batch-1 latency of exported files, measured through the runtime's own ``Predictor.predict``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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
