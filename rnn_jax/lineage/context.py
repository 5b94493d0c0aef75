"""What every generation of one run shares, built once: the data, the folder, the model's
functions, the jitted steps and forwards, the device placement. Also the checks a run makes
on its data and batch size before it touches the run folder."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from rnn_jax.config import RunConfig
from rnn_jax.data.types import Dataset, Split
from rnn_jax.distill.schedules import learning_rate_schedule
from rnn_jax.distill.step import ModelFunctions, make_forward, make_optimizer, make_train_step
from rnn_jax.distributed import Placement, check_batch_size
from rnn_jax.errors import ConfigError, DataError
from rnn_jax.lineage.run_folder import RunFolder

Log = Callable[[str], None]


@dataclasses.dataclass
class RunContext:
    """What every generation of one run shares (built once by :func:`build_context`)."""

    config: RunConfig
    dataset: Dataset
    train: Split
    folder: RunFolder
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
    init_weights: dict | None = None  # generation 0 starts from these (fine-tuning, --init-from)

    @property
    def main(self) -> bool:
        """Process 0: the only one that writes files and logs."""
        return self.folder.main

    @property
    def eval_batch_size(self) -> int:
        requested = self.config.train.eval_batch_size
        if requested is None:
            requested = 64 if jax.default_backend() == "cpu" else 512
        return self.placement.eval_batch_size(requested)


def check_run(config: RunConfig, dataset: Dataset, train: Split, placement: Placement) -> None:
    """Refuse data, batch sizes and modes this run cannot train with (before the folder changes)."""
    if dataset.num_classes < 2:  # a one-class "classifier" scores a meaningless 100%
        raise DataError(f"data set {dataset.name!r} has {dataset.num_classes} class "
                        f"({', '.join(dataset.class_names)}); a classifier needs at least two: "
                        "add a folder of images per gesture")
    present = np.unique(np.asarray(train.labels))
    if len(present) < 2:
        raise DataError(f"the training images of {dataset.name!r} are all of one class "
                        f"({dataset.class_names[int(present[0])]}); a classifier needs at least two")
    if config.train.batch_size > len(train):
        raise ConfigError(
            f"--batch-size {config.train.batch_size} is larger than the {len(train)} training images; "
            f"use --batch-size {max(1, len(train) // 4)} or fewer")
    check_batch_size(config.train.batch_size, placement)
    if config.distill.ps_kd and placement.process_count > 1:
        raise ConfigError("--ps-kd needs a single-process run: each process sees only its own rows of a "
                          "batch, and the per-example predictions must all be in one place")


def step_builder(config: RunConfig, fns: ModelFunctions, steps_per_epoch: int, replicated) -> Callable:
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


def build_context(config: RunConfig, dataset: Dataset, train: Split, folder: RunFolder, fns: ModelFunctions,
                  placement: Placement, progress: bool, log: Log) -> RunContext:
    steps_per_epoch = len(train) // config.train.batch_size
    replicated = placement.replicated
    step_for = step_builder(config, fns, steps_per_epoch, replicated)
    tx, _ = step_for(config.train.epochs)
    ctx = RunContext(config, dataset, train, folder, fns, step_for, make_forward(fns, replicated=replicated), tx,
                     steps_per_epoch, progress, log, placement=placement,
                     teacher_forward=None if replicated is None else make_forward(
                         fns, replicated=replicated, out_sharding=placement.data_sharding))
    if config.distill.hint_weight > 0:
        ctx.feature_forward = make_forward(fns, replicated=replicated, out_sharding=placement.data_sharding,
                                           method="hint_features")
    return ctx
