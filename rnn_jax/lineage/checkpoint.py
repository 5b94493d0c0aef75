"""Orbax checkpoints of one generation: its best weights, and its latest epoch for resume.

Both are ``CheckpointManager`` series with ``max_to_keep=1``: a new step is written to a
temporary directory and renamed, and only then the old one is removed, so a kill at any
moment leaves one complete checkpoint behind.

Multi-process runs: every process calls every method in the same order (save, restore,
delete, close). Orbax coordinates them: process 0 (the primary host) creates and finalises
the directories, each process writes the shards it holds (a replicated array is written once),
and barriers keep them in step. A restore lands on the template's sharding, so a run saved on
N devices resumes on any other number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.sharding import Sharding

PyTree = Any


def _manager(directory: Path) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(directory.resolve(), options=options)


def _abstract(tree: PyTree, sharding: Sharding | None = None) -> PyTree:
    """Shapes/dtypes of ``tree``; placed on ``sharding`` when given, else where the template lives."""
    if sharding is None:
        return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


class GenerationCheckpoints:
    """``<run>/gen_<k>/best`` (weights picked by validation accuracy) and ``.../resume``."""

    def __init__(self, gen_dir: Path):
        self.gen_dir = Path(gen_dir)
        self._best = _manager(self.gen_dir / "best")
        self._resume = _manager(self.gen_dir / "resume")

    def save_best(self, epoch: int, weights: PyTree) -> None:
        self._best.save(epoch, args=ocp.args.StandardSave(weights), force=True)
        self._best.wait_until_finished()

    def best_epoch(self) -> int | None:
        return self._best.latest_step()

    def restore_best(self, template: PyTree, sharding: Sharding | None = None) -> PyTree:
        step = self._best.latest_step()
        if step is None:
            raise FileNotFoundError(f"no best checkpoint in {self.gen_dir}")
        return self._best.restore(step, args=ocp.args.StandardRestore(_abstract(template, sharding)))

    def save_resume(self, epoch: int, train_state: PyTree) -> None:
        self._resume.save(epoch, args=ocp.args.StandardSave(train_state), force=True)
        self._resume.wait_until_finished()

    def resume_epoch(self) -> int | None:
        return self._resume.latest_step()

    def restore_resume(self, template: PyTree, sharding: Sharding | None = None) -> PyTree:
        step = self._resume.latest_step()
        return self._resume.restore(step, args=ocp.args.StandardRestore(_abstract(template, sharding)))

    def drop_resume(self) -> None:
        """A finished generation needs only its best weights; the optimizer state is dead weight."""
        for step in self._resume.all_steps():
            self._resume.delete(step)

    def close(self) -> None:
        self._best.close()
        self._resume.close()
