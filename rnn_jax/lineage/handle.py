"""A trained lineage on disk, read-only: its record, tables, plots, data, models, evaluation.

Sits below ``rnn_jax.api`` and ``rnn_jax.export`` (both import it; it imports neither), so
export can open a run without an import cycle. ``rnn_jax.api.Lineage`` adds ``export_onnx``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from rnn_jax.data.registry import DataSpec, load_dataset
from rnn_jax.data.types import Dataset
from rnn_jax.errors import DataError
from rnn_jax.lineage.record import finished_generations, read_lineage


class Lineage:
    """A finished (or partial) run on disk: metrics, models, evaluation, plots."""

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
        from rnn_jax.lineage.weights import load_generation_weights

        gen = self.final_generation if gen is None else gen
        data = self.record["data"]
        fns, params, batch_stats = load_generation_weights(self.dir, self.record, gen, data["image_shape"],
                                                           len(data["class_names"]), compute_dtype=dtype)
        return merge_eval_model(fns, params, batch_stats)

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
