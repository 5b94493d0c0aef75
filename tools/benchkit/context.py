"""What every benchmark section shares: the Context, the measured presets, timing helpers."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnn_jax.presets import PRESETS
from tools.benchkit.timing import Measured, StepBench, load, repeats_for

REPO = Path(__file__).resolve().parents[2]
_CPU = PRESETS["cpu"]
CPU_PRESET = (_CPU.model, _CPU.size, _CPU.image_size, _CPU.batch_size)  # model, size, px, batch
LIVE_MODEL = CPU_PRESET[:3]  # what the cpu preset trains, so what runs live


@dataclass
class Context:
    quick: bool = False
    rounds: int = 5
    block_s: float = 1.5  # seconds of work per timed block
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rnn_jax_bench_")))
    data_root: Path | None = None  # Sign Language Digits (class folders), None = absent
    video: Path | None = None
    peak_gflops: float | None = None
    torch_ok: bool = False
    models: list[str] | None = None  # train section: only these labels (e.g. resnet-small, mlp-tiny)
    budget_vs: str | None = None  # budget section: also this commit's default hand search, side by side
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def torch_threads(self) -> list[int]:
        """PyTorch is timed with 1 thread and with every core; the faster is the reference."""
        return sorted({1, os.cpu_count() or 1})


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _set_torch_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def step_work(bench: StepBench, block_s: float, threads: int | None = None) -> Callable[[], float]:
    """A timed block of ``bench``: enough steps for ~block_s seconds (calibrated once)."""
    _set_torch_threads(threads)
    n = repeats_for(lambda: bench.run(1), block_s)

    def work() -> float:
        _set_torch_threads(threads)
        return bench.run(n)

    return work


def best_torch(results: dict[str, Measured], prefix: str = "pytorch") -> tuple[float | None, str | None]:
    found = [(m.median, name) for name, m in results.items() if name.startswith(prefix + " ")]
    if not found:
        return None, None
    rate, name = max(found)
    return rate, name.split()[-1]


def load1() -> float:
    return load()[0]
