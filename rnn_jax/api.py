"""The Python API (notebooks, scripts); the CLIs are thin layers over these functions.

    from rnn_jax.api import DataSpec, RunConfig, train
    lineage = train(RunConfig(gens=3), DataSpec("builtin"), "runs/demo")
    print(lineage.table())
    lineage.export_onnx("student.onnx")
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from rnn_jax.config import DistillConfig, RunConfig, TrainConfig
from rnn_jax.data.registry import DataSpec, load_dataset
from rnn_jax.data.types import Dataset
from rnn_jax.errors import DataError
from rnn_jax.lineage.record import finished_generations, read_lineage
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


class Lineage:
    """A finished (or partial) run on disk: metrics, models, evaluation, plots, export."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.record = read_lineage(self.dir)
        self._dataset: Dataset | None = None

    def __repr__(self) -> str:
        return f"Lineage({str(self.dir)!r}, generations={len(self.generations)}, final={self.final_generation})"

    @property
    def generations(self) -> list[dict]:
        return finished_generations(self.record)

    @property
    def final_generation(self) -> int | None:
        return self.record.get("final_generation")

    @property
    def class_names(self) -> list[str]:
        return list(self.record["data"]["class_names"])

    def table(self) -> str:
        from rnn_jax.lineage.report import generation_table

        return generation_table(self.record)

    def plot(self) -> list[Path]:
        """Write the run's PNG plots into its folder and return their paths.

        Safe in notebooks: the plotting code selects matplotlib's file-only backend, and the
        backend the caller had chosen (e.g. Jupyter's inline one) is put back afterwards.
        """
        from rnn_jax.lineage.report import write_plots

        with _keep_matplotlib_backend():
            return write_plots(self.record, self.dir)

    def dataset(self, data_path: str | None = None) -> Dataset:
        """Rebuild the run's data from the spec stored in lineage.json."""
        if self._dataset is None or data_path:
            spec = self.record.get("data_spec")
            if not spec:
                raise DataError(f"{self.dir} does not record how its data was loaded; pass the data explicitly")
            if data_path:
                spec = {**spec, "path": data_path}
            self._dataset = load_dataset(DataSpec(**spec), progress=False)
        return self._dataset

    def load_model(self, gen: int | None = None, dtype: str | None = None):
        """The generation's model (default: the final student), in inference mode.

        ``dtype`` overrides the compute dtype the run trained with (export uses float32).
        """
        from rnn_jax.distill.step import merge_eval_model
        from rnn_jax.lineage.driver import load_generation_weights

        gen = self.final_generation if gen is None else gen
        data = self.record["data"]
        fns, params, batch_stats = load_generation_weights(self.dir, self.record, gen, data["image_shape"],
                                                           len(data["class_names"]), compute_dtype=dtype)
        return merge_eval_model(fns, params, batch_stats)

    def export_onnx(self, out: str | Path = "student.onnx", gen: int | None = None, int8: bool = False,
                    **options):
        """Export a generation (default: the final student) to ONNX behind the parity gate.

        Landmark runs export their per-frame step with explicit state (a report dict comes back)."""
        from rnn_jax.export import export_run

        if self.record["data"].get("crop_mode") == "landmarks":
            from rnn_jax.export.landmark_export import export_landmark_run

            return export_landmark_run(self.dir, gen=gen, out=out, **options)

        return export_run(self.dir, gen=gen, out=out, int8=int8, dataset=self._dataset, **options)

    def evaluate(self, split: str = "test", data_path: str | None = None, dataset: Dataset | None = None) -> dict:
        from rnn_jax.lineage.evaluate import evaluate_run

        return evaluate_run(self.dir, self.record, dataset or self.dataset(data_path), split)


@contextlib.contextmanager
def _keep_matplotlib_backend():
    """Put back the matplotlib backend the caller chose (None: nobody chose one; keep Agg).

    ``write_plots`` switches to Agg so scripts and servers need no display. In Jupyter that
    would silently turn every later ``plt.show()`` into a no-op, and ``matplotlib.use`` alone
    does not undo it (the inline backend hooks into IPython only when IPython activates it).
    """
    import matplotlib

    try:
        chosen = matplotlib.get_backend(auto_select=False)  # matplotlib >= 3.10
    except TypeError:
        chosen = matplotlib.rcParams._get_backend_or_none()  # 3.8 / 3.9
    try:
        yield
    finally:
        if chosen is not None and matplotlib.get_backend() != chosen:
            shell = _ipython_shell()
            try:
                if shell is None:
                    raise RuntimeError("not in IPython")
                inline = chosen in ("inline", "module://matplotlib_inline.backend_inline")
                shell.enable_matplotlib("inline" if inline else chosen)  # what %matplotlib does
            except Exception:  # older IPython without module:// names, or no IPython at all
                matplotlib.use(chosen)


def _ipython_shell():
    """The running IPython shell (Jupyter, Colab, the IPython terminal), else None."""
    import sys

    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


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
