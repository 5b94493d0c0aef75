"""Orbax checkpoints of one generation: its best weights, and its latest epoch for resume.

Both are ``CheckpointManager`` series with ``max_to_keep=1``: a new step is written to a
temporary directory and renamed, and only then the old one is removed, so a kill at any
moment leaves one complete checkpoint behind. Temporary directories of a save that was cut
off are removed when the generation's checkpoints are next opened. A save that fails (disk
full) raises :class:`~rnn_jax.errors.StorageError` and leaves the previous step in place.

The resume checkpoint (written every epoch) is packed into one flat array per dtype: Orbax's
cost is per array, ~2 ms each, and the cpu preset's train state has ~175 arrays (0.33 s per
save as a tree, 0.04 s packed; an epoch takes ~2 s). The best weights, written once per
generation, stay a readable tree.

Multi-process runs: every process calls every method in the same order (save, restore,
delete, close). Orbax coordinates them: process 0 (the primary host) creates and finalises
the directories, each process writes the shards it holds (a replicated array is written once),
and barriers keep them in step. A restore lands on the template's sharding, so a run saved on
N devices resumes on any other number.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from jax.sharding import Sharding

from rnn_jax.errors import ResumeError
from rnn_jax.lineage.record import storage_errors

PyTree = Any
# written into every resume checkpoint; one without it (or with another) is not read
RESUME_LAYOUT = "packed-by-dtype/1"


def _manager(directory: Path) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True, enable_async_checkpointing=False,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(directory.resolve(), options=options, item_handlers=ocp.StandardCheckpointHandler())


@jax.jit
def _pack(tree: PyTree) -> dict[str, jax.Array]:
    """All leaves of ``tree`` raveled and concatenated, one flat array per dtype."""
    groups: dict[str, list[jax.Array]] = {}
    for leaf in jax.tree.leaves(tree):
        groups.setdefault(jnp.dtype(leaf.dtype).name, []).append(jnp.ravel(leaf))
    return {name: jnp.concatenate(parts) for name, parts in groups.items()}


def _unpack(packed: dict[str, jax.Array], template: PyTree) -> PyTree:
    """The inverse of :func:`_pack`, shaped like ``template`` (only its shapes and dtypes are read)."""
    leaves, treedef = jax.tree.flatten(template)
    specs = tuple((tuple(leaf.shape), jnp.dtype(leaf.dtype).name) for leaf in leaves)
    return _split_packed(packed, treedef, specs)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _split_packed(packed: dict[str, jax.Array], treedef, specs: tuple) -> PyTree:
    offsets = dict.fromkeys(packed, 0)
    out = []
    for shape, dtype in specs:
        start, size = offsets[dtype], math.prod(shape)
        offsets[dtype] = start + size
        out.append(packed[dtype][start:start + size].reshape(shape))
    return jax.tree.unflatten(treedef, out)


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
        with storage_errors(f"the best checkpoint of {self.gen_dir.name} (epoch {epoch + 1}) in {self.gen_dir}"):
            if epoch in self._best.all_steps():
                # left by a run killed before that epoch's resume checkpoint; the epoch is being redone
                self._best.delete(epoch)
            self._best.save(epoch, args=ocp.args.StandardSave(weights), force=True)
            self._best.wait_until_finished()

    def best_epoch(self) -> int | None:
        return self._best.latest_step()

    def restore_best(self, template: PyTree, sharding: Sharding | None = None) -> PyTree:
        step = self._best.latest_step()
        if step is None:
            raise FileNotFoundError(f"no best checkpoint in {self.gen_dir}")
        return self._best.restore(step, args=ocp.args.StandardRestore(_abstract(template, sharding)))

    def save_resume(self, epoch: int, train_state: PyTree, progress: dict | None = None) -> None:
        """Everything needed to go on after ``epoch`` epochs (any pytree of arrays); ``progress``
        (JSON) is stored in the same atomic save, so it can never be out of step with the arrays."""
        with storage_errors(f"the resume checkpoint of {self.gen_dir.name} (after epoch {epoch}) in {self.gen_dir}"):
            if epoch in self._resume.all_steps():
                self._resume.delete(epoch)
            self._resume.save(epoch, args=ocp.args.StandardSave(_pack(train_state)), force=True,
                              custom_metadata={"layout": RESUME_LAYOUT, "progress": progress})
            self._resume.wait_until_finished()

    def resume_epoch(self) -> int | None:
        return self._resume.latest_step()

    def resume_progress(self) -> dict | None:
        """The ``progress`` saved with the latest resume checkpoint (None when there is none)."""
        step = self._resume.latest_step()
        if step is None:
            return None
        return self._resume_metadata(step).get("progress")

    def _resume_metadata(self, step: int) -> dict:
        return dict(self._resume.metadata(step).custom_metadata or {})

    def restore_resume(self, template: PyTree, sharding: Sharding | None = None) -> PyTree:
        """The arrays saved by :meth:`save_resume`, shaped like ``template``. A checkpoint an
        earlier rnn-jax wrote in another layout raises :class:`ResumeError` saying what to delete."""
        step = self._resume.latest_step()
        if self._resume_metadata(step).get("layout") != RESUME_LAYOUT:
            raise ResumeError(f"{self.gen_dir / 'resume'} was written by an earlier rnn-jax and cannot be "
                              f"resumed; delete that folder to train {self.gen_dir.name} again from its first "
                              "epoch (finished generations are not affected)")
        packed_template = jax.eval_shape(_pack, template)
        if sharding is None:  # where the template lives
            sharding = jax.tree.leaves(template)[0].sharding
        packed = self._resume.restore(step, args=ocp.args.StandardRestore(_abstract(packed_template, sharding)))
        return _unpack(packed, template)

    def drop_resume(self) -> None:
        """A finished generation needs only its best weights; the optimizer state is dead weight."""
        for step in self._resume.all_steps():
            self._resume.delete(step)

    def close(self) -> None:
        self._best.close()
        self._resume.close()
