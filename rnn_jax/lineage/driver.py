"""The generation driver: a plain Python loop over generations 0..N-1.

Each generation is a fresh student of the same architecture with its own seed. Generation
0 learns from labels; generation k learns from generation k-1's soft targets. The jitted
step is built once and reused by every generation (alpha/temperature are step inputs).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from rnn_jax.config import RunConfig
from rnn_jax.data.mixing import mix_batch
from rnn_jax.data.pipeline import epoch_seed, eval_batches, train_batches
from rnn_jax.data.types import Dataset, Split
from rnn_jax.distill.ensemble import ensemble_probabilities
from rnn_jax.distill.hints import init_regressor
from rnn_jax.distill.plateau import plateaued
from rnn_jax.distill.progressive import PredictionStore, self_target_weight
from rnn_jax.distill.schedules import generation_temperature, learning_rate_schedule
from rnn_jax.distill.step import (
    ModelFunctions,
    TrainState,
    evaluated_params,
    init_state,
    make_forward,
    make_optimizer,
    make_train_step,
    split_model,
)
from rnn_jax.distill.teachers import (  # noqa: F401  (TeacherSource: re-exported for the bench)
    TeacherSource,
    batch_teacher_features,
    batch_teacher_logits,
    ensemble_log_probs,
    teacher_generations,
)
from rnn_jax.distill.views import (
    ViewSpec,
    epoch_images,
    epoch_teacher_rows,
    epoch_views,
    teacher_view_logits,
)
from rnn_jax.distributed import (
    Placement,
    barrier,
    check_batch_size,
    initialize_from_env,
    is_main_process,
    make_placement,
)
from rnn_jax.errors import ConfigError, DataError, ResumeError
from rnn_jax.lineage.checkpoint import GenerationCheckpoints
from rnn_jax.lineage.preflight import check_init_from, check_run_dir
from rnn_jax.lineage.record import (
    LINEAGE_FILE,
    STARTED_FILE,
    append_metrics,
    choose_final_generation,
    finished_generations,
    generation_entry,
    new_lineage,
    storage_errors,
    uninterrupted,
    write_json_atomic,
)
from rnn_jax.models.registry import count_params, create_model
from rnn_jax.process_setup import setup_training_process

Log = Callable[[str], None]


def generation_seed(seed: int, gen: int) -> int:
    return seed * 1000 + gen


def gen_dir(run_dir: Path, gen: int) -> Path:
    return Path(run_dir) / f"gen_{gen}"


@dataclasses.dataclass
class _Context:
    """What every generation of one run shares (built once)."""

    config: RunConfig
    dataset: Dataset
    train: Split
    run_dir: Path
    fns: ModelFunctions
    step_for: Callable  # epochs -> (optimizer, jitted train step)
    forward: Callable
    tx: object
    steps_per_epoch: int
    progress: bool
    log: Log
    placement: Placement = dataclasses.field(default_factory=Placement)
    teacher_forward: Callable | None = None  # consistent mode: logits sharded like the batch
    feature_forward: Callable | None = None  # FitNets hints: the teacher's hint_features, sharded like the batch
    main: bool = True  # process 0: the only one that writes files and logs
    init_weights: dict | None = None  # generation 0 starts from these (fine-tuning, --init-from)

    @property
    def eval_batch_size(self) -> int:
        requested = self.config.train.eval_batch_size
        if requested is None:
            requested = 64 if jax.default_backend() == "cpu" else 512
        return self.placement.eval_batch_size(requested)

    def write_record(self, record: dict) -> None:
        if self.main:
            write_json_atomic(self.run_dir / LINEAGE_FILE, record)


def _step_builder(config: RunConfig, fns: ModelFunctions, steps_per_epoch: int, replicated):
    """``step_for(epochs) -> (optimizer, jitted step)``: the learning-rate schedule spans one
    generation, so a generation of another length (``--student-epochs``) gets its own step
    (one more compilation); generations of equal length share one."""
    built: dict[int, tuple] = {}

    def step_for(epochs: int):
        if epochs not in built:
            total = steps_per_epoch * epochs
            lr = learning_rate_schedule(config.train.lr, total, int(config.train.warmup_epochs * steps_per_epoch))
            tx = make_optimizer(lr, config.train.optimizer, config.train.weight_decay, model_name=config.model.name)
            built[epochs] = (tx, make_train_step(fns, tx, config.distill.label_smoothing, config.distill.ema_decay,
                                                 replicated=replicated,
                                                 teacher_heads=config.distill.teacher_heads,
                                                 with_predictions=config.distill.ps_kd > 0,
                                                 hint_weight=config.distill.hint_weight))
        return built[epochs]

    return step_for


def describe_data(dataset: Dataset, train: Split) -> dict:
    return {
        "name": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "class_names": list(dataset.class_names),
        "image_shape": list(dataset.image_shape),
        "crop_mode": dataset.crop_mode,
        "sizes": {"train_used": len(train), **{k: len(v) for k, v in dataset.splits().items()}},
        "notes": dataset.notes,
    }


def check_classes(dataset: Dataset, train: Split) -> None:
    """Refuse data with fewer than two classes: a one-class "classifier" scores a meaningless 100%."""
    if dataset.num_classes < 2:
        raise DataError(f"data set {dataset.name!r} has {dataset.num_classes} class "
                        f"({', '.join(dataset.class_names)}); a classifier needs at least two: "
                        "add a folder of images per gesture")
    present = np.unique(np.asarray(train.labels))
    if len(present) < 2:
        raise DataError(f"the training images of {dataset.name!r} are all of one class "
                        f"({dataset.class_names[int(present[0])]}); a classifier needs at least two")


def run_lineage(config: RunConfig, dataset: Dataset, run_dir: str | Path, *, resume: bool = False,
                overwrite: bool = False, data_spec: dict | None = None, progress: bool = True,
                init_from: str | Path | None = None, log: Log = print) -> dict:
    """Train (or finish) a lineage; returns the lineage record (also in ``run_dir/lineage.json``).

    Data-parallel over ``config.devices`` devices (None: all, of every process when the
    environment describes a multi-process run; see :mod:`rnn_jax.distributed`). Every process
    runs this same function; only process 0 writes files and logs.
    """
    initialize_from_env()
    process = setup_training_process()  # allocator + compilation cache, before the first compile
    run_dir = Path(run_dir)
    train = dataset.train.take(config.train.max_train, seed=config.seed)
    check_classes(dataset, train)
    if config.train.batch_size > len(train):
        raise ConfigError(
            f"--batch-size {config.train.batch_size} is larger than the {len(train)} training images; "
            f"use --batch-size {max(1, len(train) // 4)} or fewer")
    placement = make_placement(config.devices)
    check_batch_size(config.train.batch_size, placement)
    if config.distill.ps_kd and placement.process_count > 1:
        raise ConfigError("--ps-kd needs a single-process run: each process sees only its own rows of a "
                          "batch, and the per-example predictions must all be in one place")
    main = is_main_process()
    if not main:
        log, progress = (lambda _: None), False
    record = _open_record(config, dataset, train, run_dir, resume, overwrite, data_spec, main, log)

    template = create_model(config.model, dataset.image_shape, dataset.num_classes, seed=config.seed)
    fns, _, _ = split_model(template)
    steps_per_epoch = len(train) // config.train.batch_size
    replicated = placement.replicated
    step_for = _step_builder(config, fns, steps_per_epoch, replicated)
    tx, _ = step_for(config.train.epochs)
    ctx = _Context(config, dataset, train, run_dir, fns, step_for, make_forward(fns, replicated=replicated), tx,
                   steps_per_epoch, progress, log, placement=placement, main=main,
                   teacher_forward=None if replicated is None else make_forward(
                       fns, replicated=replicated, out_sharding=placement.data_sharding))
    if config.distill.hint_weight > 0:
        ctx.feature_forward = make_forward(fns, replicated=replicated, out_sharding=placement.data_sharding,
                                           method="hint_features")
    record["model"] = {"label": config.model.label, "params": count_params(template)}
    record["distributed"] = placement.describe()
    record["process"] = process
    if init_from is not None:
        ctx.init_weights, note = transferable_weights(Path(init_from), config, dataset, template)
        record["init_from"] = {"run": str(init_from), "note": note}
        log(f"generation 0 starts from {init_from}: {note}")
    log(f"run {run_dir}: {config.model.label} ({record['model']['params']:,} params) on {dataset.name} "
        f"{tuple(dataset.image_shape)}, {len(train)} train / {len(dataset.val)} val images, "
        f"{config.gens} generations x {config.train.epochs} epochs, teacher={config.distill.teacher}"
        + (f" on {config.distill.teacher_views} stored views" if config.distill.teacher_views else ""))
    if placement.num_devices > 1:
        log(f"data-parallel over {placement.num_devices} {record['distributed']['platform']} devices "
            f"in {placement.process_count} process(es): each step splits the batch of "
            f"{config.train.batch_size} into {placement.num_devices} x "
            f"{config.train.batch_size // placement.num_devices}")

    record["stop_reason"] = None
    for gen in range(config.gens):
        entry = generation_entry(record, gen)
        if entry is not None and entry.get("status") == "done":
            log(f"gen {gen}: already finished (val {entry['val_acc']:.4f}), skipping")
            continue
        if entry is not None and entry.get("status") == "failed":
            record["stop_reason"] = f"generation {gen} failed earlier: {entry.get('stop_reason')}"
            break
        entry = _train_generation(ctx, record, gen)
        ctx.write_record(record)
        if entry["status"] == "failed":
            record["stop_reason"] = f"generation {gen} failed: {entry['stop_reason']}"
            log(record["stop_reason"])
            break
        scores = [g["val_acc"] for g in finished_generations(record)]
        if plateaued(scores, config.min_delta, config.patience):
            record["stop_reason"] = (f"plateau: no val gain >= {config.min_delta} "
                                     f"for {config.patience} generation(s)")
            log(f"stopping early after gen {gen}: {record['stop_reason']}")
            break

    done = finished_generations(record)
    if done:
        record["final_generation"] = choose_final_generation(done, config.final_by)
        record["ensembles"] = ensemble_metrics(run_dir, record, dataset)
    record["stop_reason"] = record["stop_reason"] or "completed all generations"
    ctx.write_record(record)
    barrier("rnn_jax:lineage_written")  # nobody returns (and reads the run) before it is complete
    return record


def _open_record(config: RunConfig, dataset: Dataset, train: Split, run_dir: Path, resume: bool,
                 overwrite: bool, data_spec: dict | None, main: bool = True, log: Log = print) -> dict:
    """Check, then create or reopen the run folder. Every process checks the same files (so
    they raise the same errors); only process 0 changes them, and the others wait for it.

    ``--resume`` of a folder the CLI marked as started (:data:`STARTED_FILE`) but that has
    no lineage.json yet (the run was stopped while loading its data) starts the run afresh."""
    data = describe_data(dataset, train)
    lineage_path = run_dir / LINEAGE_FILE
    record = check_run_dir(config, run_dir, resume, overwrite)
    if record is not None:  # --resume of a run with this config: the data must match too
        if record["data"]["fingerprint"] != data["fingerprint"]:
            raise ResumeError(f"--resume {run_dir} does not match this command: data: run was trained on "
                              f"{record['data']['name']} (fingerprint {record['data']['fingerprint']}), "
                              f"this is {data['name']} ({data['fingerprint']})")
        record["config"] = config.to_dict()  # gens may grow on resume
        return record
    if resume:  # check_run_dir found the started marker: stopped while loading its data
        log(f"--resume: {run_dir} was stopped before its first epoch; starting it from the beginning")
    barrier("rnn_jax:run_dir_checked")  # process 0 may delete what the others just looked at
    record = new_lineage(run_dir.name, config.to_dict(), data, data_spec)
    if main:
        if overwrite and run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        with storage_errors(str(run_dir)):
            run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(lineage_path, record)
        (run_dir / STARTED_FILE).unlink(missing_ok=True)
    barrier("rnn_jax:run_dir_created")
    return record


def predict_logits(forward: Callable, params, batch_stats, images: np.ndarray, batch_size: int,
                   transform: Callable | None = None, placement: Placement | None = None) -> np.ndarray:
    """Logits for a whole split in fixed-size batches (one compilation, padding dropped).

    With a data-parallel ``placement`` each batch is sharded like a training batch (each
    process reads only its rows; ``batch_size`` must divide by the device count) and the
    replicated logits come back whole on every process.
    """
    if placement is None or placement.mesh is None:
        out = []
        for batch, valid in eval_batches(images, batch_size, transform):
            out.append(np.asarray(forward(params, batch_stats, jnp.asarray(batch, jnp.float32)))[:valid])
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
    out = []
    for batch, valid in eval_batches(images, batch_size, transform, placement.local_rows(batch_size)):
        out.append(np.asarray(forward(params, batch_stats, placement.batch(batch, jnp.float32)))[:valid])
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def logits_metrics(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) computed in float64 numpy."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(labels)), labels].mean())
    return float(np.mean(logits.argmax(axis=1) == labels)), loss


def _teacher_for(ctx: _Context, gen: int) -> tuple[list[int], list[dict], np.ndarray | None]:
    """(teaching generations, their weights, cached train logits or None) for generation ``gen``.

    Cached mode reads each teacher's stored logits on the clean training images (recomputed
    when missing or unreadable) and combines several into the ensemble's log-probabilities.
    With stored views (``--teacher-views K``) the logits are ``[N, K, C]``: one row per view.
    """
    teachers = teacher_generations(gen, ctx.config.distill.teacher_from)
    weights = [_restore_weights(ctx, g) for g in teachers]
    cached = None
    if teachers and ctx.config.distill.teacher == "cached":
        logits = _train_view_logits if ctx.config.distill.teacher_views else _train_logits
        cached = ensemble_log_probs([logits(ctx, g, w) for g, w in zip(teachers, weights)])
    return teachers, weights, cached


def _view_spec(ctx: _Context) -> ViewSpec:
    train = ctx.config.train
    return ViewSpec(ctx.config.distill.teacher_views, ctx.config.seed, train.augment, train.flip,
                    ctx.dataset.train_view)


def _train_view_logits(ctx: _Context, gen: int, weights: dict) -> np.ndarray:
    """Generation ``gen``'s logits on every stored view, ``[N, K, C]``: computed once and kept in
    its folder beside train_logits.npy (named by K and seed; the augmentation and training
    subset cannot change within a run, --resume refuses that)."""
    spec = _view_spec(ctx)
    path = gen_dir(ctx.run_dir, gen) / f"train_view_logits_k{spec.count}_seed{spec.seed}.npy"
    stored = _stored_array(path, (len(ctx.train), spec.count, ctx.dataset.num_classes))
    if stored is not None:
        return stored

    def logits_of(inputs: np.ndarray, transform: Callable) -> np.ndarray:
        return predict_logits(ctx.forward, weights["params"], weights["batch_stats"], inputs,
                              ctx.eval_batch_size, transform, ctx.placement)

    logits = teacher_view_logits(logits_of, ctx.train.images, spec)
    if ctx.main:
        _save_npy_atomic(path, logits)
    return logits


def _stored_array(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """A stored logits file when it is readable and of the expected shape, else None (recompute)."""
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)  # never unpickle: an unreadable file is recomputed
    except (OSError, ValueError):
        return None
    return array if array.shape == shape else None


def _train_logits(ctx: _Context, gen: int, weights: dict) -> np.ndarray:
    stored = _stored_array(gen_dir(ctx.run_dir, gen) / "train_logits.npy", (len(ctx.train), ctx.dataset.num_classes))
    if stored is not None:
        return stored
    return predict_logits(ctx.forward, weights["params"], weights["batch_stats"], ctx.train.images,
                          ctx.eval_batch_size, ctx.dataset.clean_train_images, ctx.placement)


def _fresh_weights(ctx: _Context, gen: int) -> tuple[TrainState, dict]:
    model = create_model(ctx.config.model, ctx.dataset.image_shape, ctx.dataset.num_classes,
                         seed=generation_seed(ctx.config.seed, gen))
    _, params, batch_stats = split_model(model)
    if gen == 0 and ctx.init_weights is not None:
        params = _overlay(params, ctx.init_weights["params"])
        batch_stats = _overlay(batch_stats, ctx.init_weights["batch_stats"])
    # FitNets hints: students (generation 0 has no teacher) train a regressor beside the model
    regressor = init_regressor(model.hint_channels) if gen > 0 and ctx.config.distill.hint_weight > 0 else None
    state = init_state(params, batch_stats, ctx.tx, ema=ctx.config.distill.ema_decay > 0, hint_regressor=regressor)
    return state, {"params": params, "batch_stats": batch_stats}


def _overlay(fresh, source):
    """Take every tensor from ``source`` whose path and shape match; keep the fresh one otherwise."""
    source_leaves = {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(source)}

    def pick(path, leaf):
        other = source_leaves.get(jax.tree_util.keystr(path))
        return other if other is not None and other.shape == leaf.shape else leaf

    return jax.tree_util.tree_map_with_path(pick, fresh)


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


def _restore_weights(ctx: _Context, gen: int) -> dict:
    _, template = _fresh_weights(ctx, gen)
    checkpoints = GenerationCheckpoints(gen_dir(ctx.run_dir, gen))
    try:
        return checkpoints.restore_best(template, ctx.placement.replicated)
    finally:
        checkpoints.close()


class Best(NamedTuple):
    """The weights the generation keeps so far, in memory: the epoch with the best validation
    accuracy, or with ``keep_epoch="last"`` the latest epoch."""

    epoch: int
    weights: dict


def _train_generation(ctx: _Context, record: dict, gen: int) -> dict:
    config, log = ctx.config, ctx.log
    temperature = generation_temperature(gen, config.gens, config.distill.temperature,
                                         config.distill.temperature_end, config.distill.temperature_schedule)
    alpha = config.distill.alpha if gen > 0 else 0.0
    t_start = time.perf_counter()
    teachers, teacher_weights, cached_logits = _teacher_for(ctx, gen)
    epochs = config.train.epochs_for(gen)
    _, step = ctx.step_for(epochs)
    teacher_time = time.perf_counter() - t_start

    entry = generation_entry(record, gen)
    if entry is None:
        entry = {"gen": gen, "parent": gen - 1 if gen > 0 else None, "teachers": teachers,
                 "seed": generation_seed(config.seed, gen), "alpha": alpha, "temperature": temperature if gen > 0 else None, "status": "running",
                 "epochs": [], "time_s": 0.0}
        record["generations"].append(entry)
    entry["status"] = "running"
    entry["teacher_time_s"] = teacher_time
    entry["time_s"] = entry.get("time_s", 0.0) + teacher_time

    checkpoints = GenerationCheckpoints(gen_dir(ctx.run_dir, gen))
    state, weights_template = _fresh_weights(ctx, gen)
    start_epoch = checkpoints.resume_epoch() or 0
    placement = ctx.placement
    best: Best | None = None
    # PS-KD: the model's latest prediction of every training example (saved with the resume checkpoint)
    predictions = (PredictionStore.from_labels(ctx.train.labels, ctx.dataset.num_classes)
                   if config.distill.ps_kd > 0 else None)
    if start_epoch:
        template = {"state": state, "best": weights_template}
        if predictions is not None:
            template["predictions"] = predictions.rows
        saved = checkpoints.restore_resume(template, placement.replicated)
        progress = checkpoints.resume_progress()
        state, best = saved["state"], Best(progress["best_epoch"], saved["best"])
        if predictions is not None:
            predictions = PredictionStore(np.asarray(saved["predictions"]))
        # the rows saved with the checkpoint win: a kill may have come before lineage.json had them
        entry["epochs"] = progress["epochs"]
        log(f"gen {gen}: resuming after epoch {start_epoch}")
    else:
        state = placement.replicate(state)
        entry["epochs"] = []
    best_val = max((e["val_acc"] for e in entry["epochs"]), default=-1.0)
    use_ema = config.distill.ema_decay > 0
    key, alpha_arr, temp_arr = placement.replicate(
        (jax.random.key(generation_seed(config.seed, gen)), jnp.float32(alpha), jnp.float32(temperature)))
    local_batch = config.train.batch_size // placement.process_count
    no_teacher = placement.batch(np.zeros((local_batch, ctx.dataset.num_classes), np.float32))
    teacher_forward = ctx.teacher_forward or ctx.forward
    teacher_source = TeacherSource(cached_logits, teacher_forward if gen > 0 else None, put=placement.batch,
                                   members=tuple(placement.replicate((w["params"], w["batch_stats"]))
                                                 for w in teacher_weights),
                                   feature_forward=ctx.feature_forward if gen > 0 else None)
    mixing = config.train.mixup > 0 or config.train.cutmix > 0
    shard = placement.shard_options()
    # stored views: the student trains on the very views its cached teacher scored
    view_spec = _view_spec(ctx) if gen > 0 and cached_logits is not None and config.distill.teacher_views else None
    if view_spec is not None:
        entry["teacher_views"] = view_spec.count

    try:
        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            seed = epoch_seed(config.seed, gen, epoch)
            source, view_images = teacher_source, None
            if view_spec is not None:
                views = epoch_views(seed, len(ctx.train), view_spec.count)
                source = dataclasses.replace(teacher_source, cached_logits=epoch_teacher_rows(cached_logits, views))
                view_images = epoch_images(view_spec, views)
            batches = train_batches(ctx.train, config.train.batch_size, seed, config.train.augment,
                                    config.train.flip, train_view=ctx.dataset.train_view, shard=shard,
                                    view_images=view_images)
            bar = tqdm(total=ctx.steps_per_epoch * config.train.batch_size, unit="img", unit_scale=True,
                       desc=f"gen {gen}/{config.gens - 1} epoch {epoch + 1}/{epochs}",
                       disable=not ctx.progress, leave=False, dynamic_ncols=True)
            sums, batch_predictions = None, []
            self_weight = (self_target_weight(epoch, epochs, config.distill.ps_kd)
                           if predictions is not None else None)
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
                teacher = batch_teacher_logits(source, batch["index"], images, no_teacher, mix)
                hint = batch_teacher_features(source, images)  # None without hints
                state, metrics, *probabilities = step(state, images, placement.batch(labels), teacher, alpha_arr,
                                                      temp_arr, key, hint)
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
            steps = ctx.steps_per_epoch
            train_loss = float(sums["loss"]) / steps
            train_time = time.perf_counter() - t0
            if not math.isfinite(train_loss):
                entry.update(status="failed", stop_reason=_diverged(f"training loss ({train_loss})", epoch,
                                                                     checkpoints, config, best))
                break
            weights = {"params": evaluated_params(state, use_ema), "batch_stats": state.batch_stats}
            val_logits = predict_logits(ctx.forward, weights["params"], weights["batch_stats"],
                                        ctx.dataset.val.images, ctx.eval_batch_size, placement=placement)
            val_acc, val_loss = logits_metrics(val_logits, ctx.dataset.val.labels)
            row = {"gen": gen, "epoch": epoch, "train_loss": train_loss,
                   "train_ce": float(sums["ce"]) / steps, "train_kl": float(sums["kl"]) / steps,
                   "train_acc_aug": float(sums["correct"]) / (steps * config.train.batch_size),
                   "val_acc": val_acc, "val_loss": val_loss, "time_s": time.perf_counter() - t0,
                   "images_per_s": steps * config.train.batch_size / train_time}
            if self_weight is not None:
                row["ps_kd_weight"] = self_weight
            if "hint" in sums:
                row["train_hint"] = float(sums["hint"]) / steps
            if not math.isfinite(val_loss):
                entry.update(status="failed", stop_reason=_diverged("validation loss", epoch, checkpoints, config,
                                                                     best))
                break
            keep = config.train.keep_epoch == "last" or val_acc > best_val
            if keep:  # a copy: the next step donates the state these weights live in
                best_val, best = val_acc, Best(epoch, jax.tree.map(jnp.copy, weights))
            # Ctrl-C waits for these writes. A kill between them is safe: the resume checkpoint
            # carries this generation's epoch rows and best weights in one atomic save, so a
            # resume never misses a row lineage.json did not get yet
            with uninterrupted("saving this epoch before stopping"):
                entry["epochs"].append(row)
                saved = {"state": state, "best": best.weights}
                if predictions is not None:
                    saved["predictions"] = predictions.rows
                checkpoints.save_resume(epoch + 1, saved, {"epochs": entry["epochs"], "best_epoch": best.epoch})
                # the generation's time includes its saves (the PyTorch way's time includes its own)
                entry["time_s"] = entry.get("time_s", 0.0) + time.perf_counter() - t0
                if ctx.main:
                    append_metrics(ctx.run_dir, row)
                ctx.write_record(record)
            log(f"gen {gen} epoch {epoch + 1}/{epochs}: loss {train_loss:.4f} "
                f"val acc {val_acc:.4f} ({row['images_per_s']:.0f} img/s, {row['time_s']:.1f}s)")
        if entry["status"] == "running":
            _finish_generation(ctx, entry, checkpoints, best)
            ctx.write_record(record)  # "done" is on disk before the resume checkpoint goes
            checkpoints.drop_resume()
    finally:
        checkpoints.close()
    return entry


def _finish_generation(ctx: _Context, entry: dict, checkpoints: GenerationCheckpoints, best: Best) -> None:
    """Store the kept epoch's weights, evaluate them on every split, keep the logits (for
    ensembles and the next teacher)."""
    t0 = time.perf_counter()
    checkpoints.save_best(best.epoch, best.weights)
    weights = best.weights
    directory = gen_dir(ctx.run_dir, entry["gen"])
    splits = {"train": ctx.train, **{k: v for k, v in ctx.dataset.splits().items() if k != "train"}}
    for name, split in splits.items():
        transform = ctx.dataset.clean_train_images if name == "train" else None
        logits = predict_logits(ctx.forward, weights["params"], weights["batch_stats"], split.images,
                                ctx.eval_batch_size, transform, ctx.placement)
        entry[f"{name}_acc"], entry[f"{name}_loss"] = logits_metrics(logits, split.labels)
        if ctx.main:
            _save_npy_atomic(directory / f"{name}_logits.npy", logits.astype(np.float32))
    barrier(f"rnn_jax:gen_{entry['gen']}_logits_written")  # the next teacher and the ensembles read them
    entry["best_epoch"] = best.epoch
    entry["status"] = "done"
    entry["time_s"] = entry.get("time_s", 0.0) + time.perf_counter() - t0
    test = f", test {entry['test_acc']:.4f}" if "test_acc" in entry else ""
    ctx.log(f"gen {entry['gen']} done: kept epoch {entry['best_epoch'] + 1}, val {entry['val_acc']:.4f}{test}, "
            f"train (clean) {entry['train_acc']:.4f}")


def _diverged(what: str, epoch: int, checkpoints: GenerationCheckpoints, config: RunConfig,
              best: Best | None) -> str:
    if best is not None:
        checkpoints.save_best(best.epoch, best.weights)
    kept = ("no checkpoint was written" if best is None
            else f"the best checkpoint so far (epoch {best.epoch + 1}) is kept")
    return (f"non-finite {what} in epoch {epoch + 1}: training diverged; {kept}. "
            f"Try a lower --lr (this run: {config.train.lr:g})")


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    with storage_errors(str(path)):
        try:
            np.save(tmp, array)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)


def ensemble_metrics(run_dir: Path, record: dict, dataset: Dataset) -> dict:
    """BAN ensembles from the stored logits: all finished generations, and those >= ensemble_from."""
    done = sorted(g["gen"] for g in finished_generations(record))
    start = record["config"].get("ensemble_from", 1)
    members = {"all": done, f"gen>={start}": [g for g in done if g >= start]}
    out = {}
    for label, gens in members.items():
        if len(gens) < 2 or (label != "all" and gens == done):
            continue
        result = {"members": gens}
        for split_name, split in dataset.splits().items():
            if split_name == "train":
                continue
            paths = [gen_dir(run_dir, g) / f"{split_name}_logits.npy" for g in gens]
            if not all(p.is_file() for p in paths):
                continue
            probs = ensemble_probabilities([np.load(p) for p in paths])
            result[f"{split_name}_acc"] = float(np.mean(probs.argmax(1) == split.labels))
        out[label] = result
    return out


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
