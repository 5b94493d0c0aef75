"""The generation driver: a plain Python loop over generations 0..N-1.

Each generation is a fresh student of the same architecture with its own seed. Generation
0 learns from labels; generation k learns from generation k-1's soft targets. The jitted
step is built once and reused by every generation (alpha/temperature are step inputs).

The collaborators: :mod:`~rnn_jax.lineage.run_folder` (the folder and lineage.json),
:mod:`~rnn_jax.lineage.context` (what the generations share), :mod:`~rnn_jax.lineage.generation`
(one generation's epochs), :mod:`~rnn_jax.lineage.teaching`, :mod:`~rnn_jax.lineage.weights`,
:mod:`~rnn_jax.lineage.inference`.
"""

from __future__ import annotations

from pathlib import Path

from rnn_jax.config import RunConfig
from rnn_jax.data.types import Dataset
from rnn_jax.distill.plateau import plateaued
from rnn_jax.distill.step import split_model
from rnn_jax.distill.teachers import (  # re-exported for the bench
    TeacherSource,
    batch_teacher_logits,
)
from rnn_jax.distributed import barrier, initialize_from_env, is_main_process, make_placement
from rnn_jax.lineage.context import Log, build_context, check_run
from rnn_jax.lineage.entry import LineageRecord
from rnn_jax.lineage.generation import train_generation
from rnn_jax.lineage.inference import ensemble_metrics, logits_metrics, predict_logits
from rnn_jax.lineage.record import choose_final_generation
from rnn_jax.lineage.run_folder import RunFolder, describe_data, gen_dir
from rnn_jax.lineage.weights import generation_seed, load_generation_weights, transferable_weights
from rnn_jax.models.registry import count_params, create_model
from rnn_jax.process_setup import setup_training_process

__all__ = ["TeacherSource", "batch_teacher_logits", "choose_final_generation", "ensemble_metrics", "gen_dir",
           "generation_seed", "load_generation_weights", "logits_metrics", "predict_logits", "run_lineage",
           "transferable_weights"]


def run_lineage(config: RunConfig, dataset: Dataset, run_dir: str | Path, *, resume: bool = False,
                overwrite: bool = False, data_spec: dict | None = None, progress: bool = True,
                init_from: str | Path | None = None, log: Log = print) -> dict:
    """Train (or finish) a lineage; returns the lineage record (also in ``run_dir/lineage.json``).

    Data-parallel over ``config.devices`` devices (None: all, of every process when the
    environment describes a multi-process run; see :mod:`rnn_jax.distributed`). Every process
    runs this same function; only process 0 writes files and logs.
    """
    # ---------------------------------------------------------------- setup: checks, folder, context
    initialize_from_env()
    process = setup_training_process()  # allocator + compilation cache, before the first compile
    train = dataset.train.take(config.train.max_train, seed=config.seed)
    placement = make_placement(config.devices)
    check_run(config, dataset, train, placement)
    main = is_main_process()
    if not main:
        log, progress = (lambda _: None), False
    folder = RunFolder(run_dir, main=main)
    record = folder.open(config, describe_data(dataset, train), resume, overwrite, data_spec, log)
    template = create_model(config.model, dataset.image_shape, dataset.num_classes, seed=config.seed)
    fns, _, _ = split_model(template)
    ctx = build_context(config, dataset, train, folder, fns, placement, progress, log)
    record["model"] = {"label": config.model.label, "params": count_params(template)}
    record["distributed"] = placement.describe()
    record["process"] = process
    if init_from is not None:
        ctx.init_weights, note = transferable_weights(Path(init_from), config, dataset, template)
        record["init_from"] = {"run": str(init_from), "note": note}
        log(f"generation 0 starts from {init_from}: {note}")
    _announce(config, dataset, train, placement, record, folder.path, log)

    # ---------------------------------------------------------------- the generations
    record["stop_reason"] = None
    for gen in range(config.gens):
        entry = record.entry(gen)
        if entry is not None and entry.status == "done":
            log(f"gen {gen}: already finished (val {entry['val_acc']:.4f}), skipping")
            continue
        if entry is not None and entry.status == "failed":
            record["stop_reason"] = f"generation {gen} failed earlier: {entry.stop_reason}"
            break
        entry = train_generation(ctx, record, gen)
        folder.write_record(record)
        if entry.status == "failed":
            record["stop_reason"] = f"generation {gen} failed: {entry.stop_reason}"
            log(record["stop_reason"])
            break
        if plateaued([e["val_acc"] for e in record.finished()], config.min_delta, config.patience):
            record["stop_reason"] = (f"plateau: no val gain >= {config.min_delta} "
                                     f"for {config.patience} generation(s)")
            log(f"stopping early after gen {gen}: {record['stop_reason']}")
            break

    # ---------------------------------------------------------------- the final student, ensembles
    return _finish_run(config, dataset, folder, record)


def _finish_run(config: RunConfig, dataset: Dataset, folder: RunFolder, record: LineageRecord) -> dict:
    done = [e.to_dict() for e in record.finished()]
    if done:
        record["final_generation"] = choose_final_generation(done, config.final_by)
        record["ensembles"] = ensemble_metrics(folder.path, record.to_dict(), dataset)
    record["stop_reason"] = record["stop_reason"] or "completed all generations"
    folder.write_record(record)
    barrier("rnn_jax:lineage_written")  # nobody returns (and reads the run) before it is complete
    return record.to_dict()


def _announce(config: RunConfig, dataset: Dataset, train, placement, record: LineageRecord, run_dir: Path,
              log: Log) -> None:
    log(f"run {run_dir}: {config.model.label} ({record['model']['params']:,} params) on {dataset.name} "
        f"{tuple(dataset.image_shape)}, {len(train)} train / {len(dataset.val)} val images, "
        f"{config.gens} generations x {config.train.epochs} epochs, teacher={config.distill.teacher}"
        + (f" on {config.distill.teacher_views} stored views" if config.distill.teacher_views else ""))
    if placement.num_devices > 1:
        log(f"data-parallel over {placement.num_devices} {record['distributed']['platform']} devices "
            f"in {placement.process_count} process(es): each step splits the batch of "
            f"{config.train.batch_size} into {placement.num_devices} x "
            f"{config.train.batch_size // placement.num_devices}")
