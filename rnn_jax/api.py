"""The Python API (notebooks, scripts); the CLIs are thin layers over these functions.

    from rnn_jax.api import DataSpec, RunConfig, train
    lineage = train(RunConfig(gens=3), DataSpec("builtin"), "runs/demo")
    print(lineage.table())
    lineage.export_onnx("student.onnx")
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rnn_jax.config import DistillConfig, RunConfig, TrainConfig
from rnn_jax.data.registry import DataSpec, load_dataset
from rnn_jax.data.types import Dataset
from rnn_jax.lineage.handle import Lineage as _Lineage
from rnn_jax.lineage.record import read_lineage
from rnn_jax.lineage.seeds import format_paired, paired_difference, paired_rows
from rnn_jax.models.registry import ModelSpec
from rnn_jax.presets import PRESETS, Preset

__all__ = ["PRESETS", "DataSpec", "DistillConfig", "Lineage", "ModelSpec", "Preset", "RunConfig", "TrainConfig",
           "compare_seeds", "format_paired", "paired_difference", "paired_rows", "train"]


def compare_seeds(run_dirs: list[str | Path],
                  baseline_dirs: list[str | Path] | dict[str, list[str | Path]] | None = None) -> list[dict]:
    """Paired Δ vs generation 0 over several seeds' runs (what ``tools/multi_seed.py`` prints):
    ``print(format_paired(compare_seeds(["runs/s0", "runs/s1", ...])))``. ``baseline_dirs``:
    one compute-matched run per seed, or ``{"label-smoothing": [...], ...}``."""
    records = [read_lineage(Path(d)) for d in run_dirs]
    if isinstance(baseline_dirs, dict):
        baselines = {name: [read_lineage(Path(d)) for d in dirs] for name, dirs in baseline_dirs.items()}
    else:
        baselines = [read_lineage(Path(d)) for d in baseline_dirs] if baseline_dirs else None
    return paired_rows(records, baselines)


class Lineage(_Lineage):
    """A finished (or partial) run on disk: metrics, models, evaluation, plots, export."""

    def export_onnx(self, out: str | Path = "student.onnx", gen: int | None = None, int8: bool = False,
                    **options):
        """Export a generation (default: the final student) to ONNX behind the parity gate.

        Landmark runs export their per-frame step with explicit state (a report dict comes back)."""
        from rnn_jax.export import export_run

        if self.record["data"].get("crop_mode") == "landmarks":
            from rnn_jax.export.landmark_export import export_landmark_run

            return export_landmark_run(self.dir, gen=gen, out=out, **options)

        return export_run(self.dir, gen=gen, out=out, int8=int8, dataset=self._dataset, **options)


def train(config: RunConfig, data: DataSpec | Dataset, out: str | Path, *, resume: bool = False,
          overwrite: bool = False, progress: bool = True) -> Lineage:
    """Train a lineage and return it; ``data`` is a DataSpec (recorded, rebuildable) or a Dataset."""
    from rnn_jax.lineage.driver import run_lineage

    spec = data if isinstance(data, DataSpec) else None
    dataset = load_dataset(spec, progress=progress) if spec else data
    run_lineage(config, dataset, out, resume=resume, overwrite=overwrite,
                data_spec=dataclasses.asdict(spec) if spec else None, progress=progress)
    lineage = Lineage(out)
    lineage._dataset = dataset
    return lineage
