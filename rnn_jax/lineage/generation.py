"""One generation's training: its epochs (batches through the jitted step, validation, the
kept weights, the per-epoch save), then its final evaluation. Resumes after the last saved
epoch; a non-finite loss fails the generation and keeps the best weights so far.

The order of random draws, batches and writes is part of the contract: the same seed gives
the same numbers, and a resumed run gives the numbers of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from rnn_jax.config import RunConfig
from rnn_jax.data.mixing import mix_batch
from rnn_jax.data.pipeline import epoch_seed, train_batches
from rnn_jax.distill.progressive import PredictionStore, self_target_weight
from rnn_jax.distill.schedules import generation_temperature
from rnn_jax.distill.step import TrainState, evaluated_params
from rnn_jax.distributed import barrier
from rnn_jax.lineage.checkpoint import GenerationCheckpoints
from rnn_jax.lineage.context import RunContext
from rnn_jax.lineage.entry import GenerationEntry, LineageRecord
from rnn_jax.lineage.inference import logits_metrics, predict_logits
from rnn_jax.lineage.record import uninterrupted
from rnn_jax.lineage.teaching import Teaching, teaching_for
from rnn_jax.lineage.weights import fresh_weights, generation_seed


class Best(NamedTuple):
    """The weights the generation keeps so far, in memory: the epoch with the best validation
    accuracy, or with ``keep_epoch="last"`` the latest epoch."""

    epoch: int
    weights: dict


@dataclasses.dataclass
class _Trainee:
    """The generation being trained: what one epoch hands the next."""

    state: TrainState  # replicated over the placement's devices
    best: Best | None
    predictions: PredictionStore | None  # PS-KD: the latest prediction of every training example
    epochs: list[dict]  # this generation's epoch rows so far


def train_generation(ctx: RunContext, record: LineageRecord, gen: int) -> GenerationEntry:
    """Train (or finish) generation ``gen``; returns its entry (also put into ``record``)."""
    config = ctx.config
    temperature = generation_temperature(gen, config.gens, config.distill.temperature,
                                         config.distill.temperature_end, config.distill.temperature_schedule)
    alpha = config.distill.alpha if gen > 0 else 0.0
    t_start = time.perf_counter()
    teaching = teaching_for(ctx, gen)
    epochs = config.train.epochs_for(gen)
    _, step = ctx.step_for(epochs)
    teacher_time = time.perf_counter() - t_start
    entry = record.entry(gen) or GenerationEntry(gen, gen - 1 if gen > 0 else None, tuple(teaching.teachers),
                                                 generation_seed(config.seed, gen), alpha,
                                                 temperature if gen > 0 else None)
    entry = dataclasses.replace(entry, status="running", teacher_time_s=teacher_time,
                                time_s=entry.time_s + teacher_time)

    checkpoints = GenerationCheckpoints(ctx.folder.gen_dir(gen))
    trainee, start_epoch = _start(ctx, gen, checkpoints)
    entry = record.put(dataclasses.replace(entry, epochs=tuple(trainee.epochs), teacher_views=(
        teaching.view_spec.count if teaching.view_spec is not None else entry.teacher_views)))
    best_val = max((e["val_acc"] for e in trainee.epochs), default=-1.0)
    inputs = ctx.placement.replicate(
        (jax.random.key(generation_seed(config.seed, gen)), jnp.float32(alpha), jnp.float32(temperature)))
    try:
        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            sums, self_weight, train_time = _train_epoch(ctx, step, teaching, trainee, inputs, gen, epoch, epochs)
            row = _epoch_row(ctx, trainee, sums, gen, epoch, self_weight, t0, train_time)
            problem = (f"training loss ({row['train_loss']})" if not math.isfinite(row["train_loss"])
                       else "validation loss" if not math.isfinite(row["val_loss"]) else None)
            if problem is not None:
                entry = record.put(dataclasses.replace(entry, status="failed", stop_reason=_diverged(
                    problem, epoch, checkpoints, config, trainee.best)))
                break
            if config.train.keep_epoch == "last" or row["val_acc"] > best_val:
                best_val = row["val_acc"]  # a copy: the next step donates the state these weights live in
                trainee.best = Best(epoch, jax.tree.map(jnp.copy, _weights(trainee.state, config)))
            entry = _save_epoch(ctx, record, entry, trainee, checkpoints, row, epoch, t0)
            ctx.log(f"gen {gen} epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.4f} "
                    f"val acc {row['val_acc']:.4f} ({row['images_per_s']:.0f} img/s, {row['time_s']:.1f}s)")
        if entry.status == "running":
            entry = record.put(_finish(ctx, entry, checkpoints, trainee.best))
            ctx.folder.write_record(record)  # "done" is on disk before the resume checkpoint goes
            checkpoints.drop_resume()
    finally:
        checkpoints.close()
    return entry


def _start(ctx: RunContext, gen: int, checkpoints: GenerationCheckpoints) -> tuple[_Trainee, int]:
    """Fresh weights, or the state, kept weights and epoch rows of the last saved epoch."""
    state, weights_template = fresh_weights(ctx, gen)
    start_epoch = checkpoints.resume_epoch() or 0
    predictions = (PredictionStore.from_labels(ctx.train.labels, ctx.dataset.num_classes)
                   if ctx.config.distill.ps_kd > 0 else None)
    if not start_epoch:
        return _Trainee(ctx.placement.replicate(state), None, predictions, []), 0
    template = {"state": state, "best": weights_template}
    if predictions is not None:
        template["predictions"] = predictions.rows
    saved = checkpoints.restore_resume(template, ctx.placement.replicated)
    progress = checkpoints.resume_progress()
    if predictions is not None:
        predictions = PredictionStore(np.asarray(saved["predictions"]))
    ctx.log(f"gen {gen}: resuming after epoch {start_epoch}")
    # the rows saved with the checkpoint win: a kill may have come before lineage.json had them
    return _Trainee(saved["state"], Best(progress["best_epoch"], saved["best"]), predictions,
                    list(progress["epochs"])), start_epoch


def _train_epoch(ctx: RunContext, step, teaching: Teaching, trainee: _Trainee, inputs: tuple, gen: int,
                 epoch: int, epochs: int) -> tuple[dict, float | None, float]:
    """One pass over the training batches; returns (summed step metrics, PS-KD weight, seconds)."""
    config, placement = ctx.config, ctx.placement
    key, alpha, temperature = inputs
    t0 = time.perf_counter()
    seed = epoch_seed(config.seed, gen, epoch)
    teaching, view_images = teaching.for_epoch(seed, len(ctx.train))
    batches = train_batches(ctx.train, config.train.batch_size, seed, config.train.augment, config.train.flip,
                            train_view=ctx.dataset.train_view, shard=placement.shard_options(),
                            view_images=view_images)
    bar = tqdm(total=ctx.steps_per_epoch * config.train.batch_size, unit="img", unit_scale=True,
               desc=f"gen {gen}/{config.gens - 1} epoch {epoch + 1}/{epochs}",
               disable=not ctx.progress, leave=False, dynamic_ncols=True)
    predictions, mixing = trainee.predictions, config.train.mixup > 0 or config.train.cutmix > 0
    sums, batch_predictions = None, []
    self_weight = self_target_weight(epoch, epochs, config.distill.ps_kd) if predictions is not None else None
    mix_rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))  # the same draws on resume
    for i, batch in enumerate(batches):
        labels, mix = batch["labels"], None
        if mixing:
            pixels, labels, mix = mix_batch(batch["images"], labels, ctx.dataset.num_classes, mix_rng,
                                            config.train.mixup, config.train.cutmix)
            batch = {**batch, "images": pixels}
        if predictions is not None:  # always [B, C] (epoch 0: one-hot): one compilation
            labels = predictions.targets(batch["index"], labels, self_weight)
        images = placement.batch(batch["images"], jnp.float32)
        teacher, hint = teaching.batch_inputs(batch["index"], images, mix)
        trainee.state, metrics, *probabilities = step(trainee.state, images, placement.batch(labels), teacher,
                                                      alpha, temperature, key, hint)
        if probabilities:  # kept on the device until the epoch ends: no sync per step
            batch_predictions.append((batch["index"], probabilities[0]))
        sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
        bar.update(config.train.batch_size)
        if i % 20 == 0:
            bar.set_postfix(loss=f"{float(metrics['loss']):.3f}")
    bar.close()
    sums = jax.device_get(sums)
    for index, probabilities in batch_predictions:  # next epoch's targets read these
        predictions.record(index, probabilities)
    return sums, self_weight, time.perf_counter() - t0


def _weights(state, config: RunConfig) -> dict:
    return {"params": evaluated_params(state, config.distill.ema_decay > 0), "batch_stats": state.batch_stats}


def _epoch_row(ctx: RunContext, trainee: _Trainee, sums: dict, gen: int, epoch: int, self_weight: float | None,
               t0: float, train_time: float) -> dict:
    """The epoch's metrics row; validation runs only when the training loss is finite."""
    steps, batch_size = ctx.steps_per_epoch, ctx.config.train.batch_size
    train_loss = float(sums["loss"]) / steps
    if not math.isfinite(train_loss):
        return {"train_loss": train_loss}
    weights = _weights(trainee.state, ctx.config)
    val_logits = predict_logits(ctx.forward, weights["params"], weights["batch_stats"],
                                ctx.dataset.val.images, ctx.eval_batch_size, placement=ctx.placement)
    val_acc, val_loss = logits_metrics(val_logits, ctx.dataset.val.labels)
    row = {"gen": gen, "epoch": epoch, "train_loss": train_loss,
           "train_ce": float(sums["ce"]) / steps, "train_kl": float(sums["kl"]) / steps,
           "train_acc_aug": float(sums["correct"]) / (steps * batch_size),
           "val_acc": val_acc, "val_loss": val_loss, "time_s": time.perf_counter() - t0,
           "images_per_s": steps * batch_size / train_time}
    if self_weight is not None:
        row["ps_kd_weight"] = self_weight
    if "hint" in sums:
        row["train_hint"] = float(sums["hint"]) / steps
    return row


def _save_epoch(ctx: RunContext, record: LineageRecord, entry: GenerationEntry, trainee: _Trainee,
                checkpoints: GenerationCheckpoints, row: dict, epoch: int, t0: float) -> GenerationEntry:
    """Ctrl-C waits for these writes. A kill between them is safe: the resume checkpoint carries
    this generation's epoch rows and best weights in one atomic save, so a resume never misses a
    row lineage.json did not get yet."""
    with uninterrupted("saving this epoch before stopping"):
        trainee.epochs.append(row)
        saved = {"state": trainee.state, "best": trainee.best.weights}
        if trainee.predictions is not None:
            saved["predictions"] = trainee.predictions.rows
        checkpoints.save_resume(epoch + 1, saved, {"epochs": trainee.epochs, "best_epoch": trainee.best.epoch})
        # the generation's time includes its saves (the PyTorch way's time includes its own)
        entry = record.put(dataclasses.replace(entry, epochs=tuple(trainee.epochs),
                                               time_s=entry.time_s + time.perf_counter() - t0))
        ctx.folder.append_metrics(row)
        ctx.folder.write_record(record)
    return entry


def _finish(ctx: RunContext, entry: GenerationEntry, checkpoints: GenerationCheckpoints,
            best: Best) -> GenerationEntry:
    """Store the kept epoch's weights, evaluate them on every split, keep the logits (for
    ensembles and the next teacher)."""
    t0 = time.perf_counter()
    checkpoints.save_best(best.epoch, best.weights)
    weights, scores = best.weights, []
    splits = {"train": ctx.train, **{k: v for k, v in ctx.dataset.splits().items() if k != "train"}}
    for name, split in splits.items():
        transform = ctx.dataset.clean_train_images if name == "train" else None
        logits = predict_logits(ctx.forward, weights["params"], weights["batch_stats"], split.images,
                                ctx.eval_batch_size, transform, ctx.placement)
        acc, loss = logits_metrics(logits, split.labels)
        scores += [(f"{name}_acc", acc), (f"{name}_loss", loss)]
        ctx.folder.save_logits(entry.gen, name, logits)
    barrier(f"rnn_jax:gen_{entry.gen}_logits_written")  # the next teacher and the ensembles read them
    entry = dataclasses.replace(entry, scores=tuple(scores), best_epoch=best.epoch, status="done",
                                time_s=entry.time_s + time.perf_counter() - t0)
    test = f", test {entry['test_acc']:.4f}" if "test_acc" in entry.to_dict() else ""
    ctx.log(f"gen {entry.gen} done: kept epoch {entry.best_epoch + 1}, val {entry['val_acc']:.4f}{test}, "
            f"train (clean) {entry['train_acc']:.4f}")
    return entry


def _diverged(what: str, epoch: int, checkpoints: GenerationCheckpoints, config: RunConfig,
              best: Best | None) -> str:
    if best is not None:
        checkpoints.save_best(best.epoch, best.weights)
    kept = ("no checkpoint was written" if best is None
            else f"the best checkpoint so far (epoch {best.epoch + 1}) is kept")
    return (f"non-finite {what} in epoch {epoch + 1}: training diverged; {kept}. "
            f"Try a lower --lr (this run: {config.train.lr:g})")
