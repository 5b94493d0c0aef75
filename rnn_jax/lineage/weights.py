"""A generation's weights: fresh (its own seed), restored (its best checkpoint) or
transferred (another run's final student, for ``--init-from``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax

from rnn_jax.config import RunConfig
from rnn_jax.data.types import Dataset
from rnn_jax.distill.hints import init_regressor
from rnn_jax.distill.step import TrainState, init_state, split_model
from rnn_jax.errors import ResumeError
from rnn_jax.lineage.checkpoint import GenerationCheckpoints
from rnn_jax.lineage.context import RunContext
from rnn_jax.lineage.record import finished_generations, generation_entry
from rnn_jax.lineage.run_folder import check_init_from, gen_dir
from rnn_jax.models.registry import create_model


def generation_seed(seed: int, gen: int) -> int:
    return seed * 1000 + gen


def fresh_weights(ctx: RunContext, gen: int) -> tuple[TrainState, dict]:
    """Generation ``gen``'s initial train state and weights (``--init-from`` overlays generation 0)."""
    model = create_model(ctx.config.model, ctx.dataset.image_shape, ctx.dataset.num_classes,
                         seed=generation_seed(ctx.config.seed, gen))
    _, params, batch_stats = split_model(model)
    if gen == 0 and ctx.init_weights is not None:
        params = overlay(params, ctx.init_weights["params"])
        batch_stats = overlay(batch_stats, ctx.init_weights["batch_stats"])
    # FitNets hints: students (generation 0 has no teacher) train a regressor beside the model
    regressor = init_regressor(model.hint_channels) if gen > 0 and ctx.config.distill.hint_weight > 0 else None
    state = init_state(params, batch_stats, ctx.tx, ema=ctx.config.distill.ema_decay > 0, hint_regressor=regressor)
    return state, {"params": params, "batch_stats": batch_stats}


def overlay(fresh, source):
    """Take every tensor from ``source`` whose path and shape match; keep the fresh one otherwise."""
    source_leaves = {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(source)}

    def pick(path, leaf):
        other = source_leaves.get(jax.tree_util.keystr(path))
        return other if other is not None and other.shape == leaf.shape else leaf

    return jax.tree_util.tree_map_with_path(pick, fresh)


def restore_weights(ctx: RunContext, gen: int) -> dict:
    """A finished generation of this run, from its best checkpoint, placed like the training state."""
    _, template = fresh_weights(ctx, gen)
    checkpoints = GenerationCheckpoints(ctx.folder.gen_dir(gen))
    try:
        return checkpoints.restore_best(template, ctx.placement.replicated)
    finally:
        checkpoints.close()


def transferable_weights(source_run: Path, config: RunConfig, dataset: Dataset, template) -> tuple[dict, str]:
    """The final student of another run, as a starting point for generation 0 of this one.

    The architecture must match; a different class list only re-initialises the classifier head.
    """
    source = check_init_from(source_run, config)
    if list(source["data"]["image_shape"])[2] != dataset.image_shape[2]:
        raise ResumeError(f"--init-from {source_run} used {source['data']['image_shape'][2]} channels, "
                          f"this data has {dataset.image_shape[2]}")
    _, params, batch_stats = load_generation_weights(source_run, source, source["final_generation"],
                                                     source["data"]["image_shape"],
                                                     len(source["data"]["class_names"]))
    weights = {"params": params, "batch_stats": batch_stats}
    _, fresh_params, _ = split_model(template)
    fresh = {jax.tree_util.keystr(p): x.shape for p, x in jax.tree_util.tree_leaves_with_path(fresh_params)}
    matched = sum(1 for p, x in jax.tree_util.tree_leaves_with_path(params)
                  if fresh.get(jax.tree_util.keystr(p)) == x.shape)
    same_classes = list(source["data"]["class_names"]) == list(dataset.class_names)
    note = (f"{matched}/{len(fresh)} parameter tensors from generation {source['final_generation']}"
            + ("" if same_classes else "; classes differ, so the classifier head starts fresh"))
    return weights, note


def load_generation_weights(run_dir: Path, record: dict, gen: int, image_shape, num_classes: int,
                            compute_dtype: str | None = None):
    """Restore a finished generation: returns (ModelFunctions, params, batch_stats).

    ``compute_dtype`` overrides the run's compute dtype (parameters are float32 either way),
    e.g. float32 for export after a bfloat16 run.
    """
    config = RunConfig.from_dict(record["config"])
    if compute_dtype is not None:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, dtype=compute_dtype))
    entry = generation_entry(record, gen)
    if entry is None or entry.get("status") != "done":
        done = [g["gen"] for g in finished_generations(record)]
        raise ResumeError(f"generation {gen} of {run_dir} is not finished; finished: {done}")
    model = create_model(config.model, tuple(image_shape), num_classes, seed=generation_seed(config.seed, gen))
    fns, params, batch_stats = split_model(model)
    checkpoints = GenerationCheckpoints(gen_dir(run_dir, gen))
    try:
        weights = checkpoints.restore_best({"params": params, "batch_stats": batch_stats})
    finally:
        checkpoints.close()
    return fns, weights["params"], weights["batch_stats"]
