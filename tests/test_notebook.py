"""notebooks/quickstart.ipynb runs top to bottom (quick mode) and is committed without outputs."""

from __future__ import annotations

import os

import nbformat
import pytest

from tests.conftest import REPO

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
KERNEL_NAME = "rnn-jax-test"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"cell {i} of {NOTEBOOK.name} has outputs: strip them before committing"
            assert cell.execution_count is None, f"cell {i} of {NOTEBOOK.name} has an execution count"


def _kernel_for_this_python(folder) -> str:
    """Register a kernel that starts this very interpreter, visible through JUPYTER_PATH only.

    A user-wide ``python3`` kernel may point at another Python (without rnn-jax's
    dependencies); a spec of our own under a unique name cannot be shadowed by it.
    """
    from ipykernel.kernelspec import write_kernel_spec  # its argv starts sys.executable

    write_kernel_spec(folder / "kernels" / KERNEL_NAME, overrides={"display_name": "rnn-jax tests"})
    return str(folder)


@pytest.mark.slow
def test_notebook_runs_in_quick_mode(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", _kernel_for_this_python(tmp_path / "kernel"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # connection files
    monkeypatch.setenv("RNN_JAX_NOTEBOOK_QUICK", "1")
    monkeypatch.delenv("RNN_JAX_DATA", raising=False)  # the demo data, whatever the shell says
    # the kernel imports rnn_jax from this checkout even when it is not pip-installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=600, startup_timeout=120,
                            resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError (with the cell and traceback) if any cell fails

    assert (work / "student.onnx").is_file()
    assert (work / "runs" / "notebook" / "lineage.json").is_file()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    text = "".join(out.get("text", "") for out in outputs)
    assert "nothing to install" in text, "the install cell must skip pip when rnn-jax is importable"
    pngs = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(pngs) >= 3, f"expected the two run plots and the prediction grid inline, got {len(pngs)} images"
