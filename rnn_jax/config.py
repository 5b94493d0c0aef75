"""Run configuration: frozen, validated dataclasses; the one place defaults live."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from rnn_jax.distill.hints import HINT_FAMILIES
from rnn_jax.distill.schedules import TEMPERATURE_SCHEDULES
from rnn_jax.errors import ConfigError
from rnn_jax.models.registry import ModelSpec

TEACHER_MODES = ("cached", "consistent")
TEACHER_FROM = ("parent", "ensemble")  # who teaches generation k: k-1, or all of 0..k-1
AUGMENTATIONS = ("none", "basic", "strong")
OPTIMIZERS = ("adamw", "sgd")
KEEP_EPOCHS = ("best", "last")  # which epoch's weights a generation keeps
FINAL_BY = ("val_loss", "val_acc")  # how the final student is chosen among the generations
STUDENT_EPOCH_FACTOR = 2  # students train this many times generation 0's epochs unless told otherwise


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class DistillConfig:
    """How a student learns from its parent: ``alpha*KL*T^2 + (1-alpha)*CE``."""

    alpha: float = 0.7
    temperature: float = 4.0
    temperature_end: float | None = None
    temperature_schedule: str = "constant"
    label_smoothing: float = 0.0
    teacher: str = "cached"  # see README: why cached is the default
    # who teaches generation k: "ensemble" = generations 0..k-1 (the recipe that won the study,
    # docs/distillation.md); "parent" = generation k-1 only (born-again networks as published)
    teacher_from: str = "ensemble"
    ema_decay: float = 0.0  # > 0: the generation's model is the EMA (mean teacher) of its weights
    # deep-supervision models (trm): which heads the teacher's soft targets reach: "all" or "final"
    teacher_heads: str = "all"
    # PS-KD (rnn_jax/distill/progressive.py): the weight a_T that the model's own previous-epoch
    # prediction reaches in its label targets by the last epoch, every generation (0 = off)
    ps_kd: float = 0.0
    # FitNets hints (rnn_jax/distill/hints.py): weight of the MSE between the student's regressed
    # last-conv-stage features and the teacher's, for every student (0 = off)
    hint_weight: float = 0.0
    # FKD-style stored views (rnn_jax/distill/views.py): the cached teacher scores K fixed
    # augmented views of every training image once per student, and the student trains on
    # exactly those views (0 = off: cached outputs on clean images)
    teacher_views: int = 0

    def __post_init__(self) -> None:
        _check(0.0 <= self.alpha <= 1.0, f"--alpha must be in [0, 1], got {self.alpha}")
        _check(math.isfinite(self.temperature) and self.temperature > 0,
               f"--temperature must be > 0, got {self.temperature}")
        _check(self.temperature_end is None or self.temperature_end > 0,
               f"--temperature-end must be > 0, got {self.temperature_end}")
        _check(self.temperature_schedule in TEMPERATURE_SCHEDULES,
               f"--temperature-schedule must be one of {TEMPERATURE_SCHEDULES}")
        _check(0.0 <= self.label_smoothing < 1.0, f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        _check(self.teacher in TEACHER_MODES, f"--teacher must be one of {TEACHER_MODES}, got {self.teacher!r}")
        _check(self.teacher_from in TEACHER_FROM,
               f"--teacher-from must be one of {TEACHER_FROM}, got {self.teacher_from!r}")
        _check(self.teacher_heads in ("all", "final"),
               f"--teacher-heads must be 'all' or 'final', got {self.teacher_heads!r}")
        _check(0.0 <= self.ema_decay < 1.0, f"--ema-decay must be in [0, 1), got {self.ema_decay}")
        _check(0.0 <= self.ps_kd < 1.0, f"--ps-kd must be in [0, 1), got {self.ps_kd}")
        _check(math.isfinite(self.hint_weight) and self.hint_weight >= 0,
               f"--hint-weight must be >= 0, got {self.hint_weight}")
        _check(not self.hint_weight or self.teacher == "consistent",
               "--hint-weight needs --teacher consistent: cached teacher outputs come from clean images, "
               "and a feature map does not line up with a shifted or flipped one")
        _check(isinstance(self.teacher_views, int) and self.teacher_views >= 0,
               f"--teacher-views must be an integer >= 0, got {self.teacher_views!r}")
        _check(not self.teacher_views or self.teacher == "cached",
               "--teacher-views needs --teacher cached: it caches the teacher's outputs on stored views, "
               "while a consistent teacher already scores every fresh view")


@dataclass(frozen=True)
class TrainConfig:
    """One generation's optimisation (each generation repeats it from a fresh init)."""

    epochs: int = 5
    batch_size: int = 128
    lr: float = 3e-3
    optimizer: str = "adamw"
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.5
    augment: str = "basic"
    flip: bool = True  # horizontal flips; turn off when left/right changes the class
    # None: 64 on CPU (XLA:CPU's images/s drops above ~64 images per call: 2,450 img/s at 64
    # vs ~1,300 at 512 for the cpu preset's forward), 512 on GPU/TPU
    eval_batch_size: int | None = None
    max_train: int | None = None
    # generations >= 1 train this many epochs (None: STUDENT_EPOCH_FACTOR x epochs). Students
    # trained as long as their teacher ended up behind it; twice as long, ahead of it
    # (docs/distillation.md). Pass the same value as epochs for equal-length generations.
    student_epochs: int | None = None
    mixup: float = 0.0  # Beta(a, a) mixup on every generation's batches (0 = off)
    cutmix: float = 0.0  # Beta(a, a) CutMix (0 = off; with mixup too, half the batches each)
    # the weights a generation keeps: "last" = the end of its schedule (born-again networks
    # distil from converged teachers), "best" = the epoch with the highest validation accuracy
    # (a best-of-N pick that validation noise biases upwards, more so for longer generations)
    keep_epoch: str = "last"

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        _check(math.isfinite(self.lr) and self.lr > 0, f"--lr must be > 0, got {self.lr}")
        _check(self.optimizer in OPTIMIZERS, f"--optimizer must be one of {OPTIMIZERS}")
        _check(self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}")
        _check(self.warmup_epochs >= 0, f"--warmup-epochs must be >= 0, got {self.warmup_epochs}")
        _check(self.augment in AUGMENTATIONS, f"--augment must be one of {AUGMENTATIONS}")
        _check(self.eval_batch_size is None or self.eval_batch_size >= 1,
               f"eval_batch_size must be >= 1, got {self.eval_batch_size}")
        _check(self.student_epochs is None or self.student_epochs >= 1,
               f"--student-epochs must be >= 1, got {self.student_epochs}")
        _check(self.mixup >= 0 and math.isfinite(self.mixup), f"--mixup must be >= 0, got {self.mixup}")
        _check(self.cutmix >= 0 and math.isfinite(self.cutmix), f"--cutmix must be >= 0, got {self.cutmix}")
        _check(self.max_train is None or self.max_train >= 1, f"--max-train must be >= 1, got {self.max_train}")
        _check(self.keep_epoch in KEEP_EPOCHS, f"--keep-epoch must be one of {KEEP_EPOCHS}, got {self.keep_epoch!r}")


    def epochs_for(self, gen: int) -> int:
        """Epochs of generation ``gen``: ``epochs`` for generation 0; ``student_epochs`` (default
        twice ``epochs``) for every student."""
        if gen == 0:
            return self.epochs
        return self.student_epochs if self.student_epochs is not None else STUDENT_EPOCH_FACTOR * self.epochs


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a lineage's numbers (data aside, which is fingerprinted)."""

    model: ModelSpec = field(default_factory=ModelSpec)
    distill: DistillConfig = field(default_factory=DistillConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    gens: int = 3
    seed: int = 0
    patience: int = 0  # generations without improvement before stopping; 0 = never stop early
    min_delta: float = 0.0  # val-accuracy gain that counts as an improvement
    ensemble_from: int = 1  # BAN ensemble averages generations >= this (gen 0 is often weakest)
    # the final student: the generation with the lowest validation cross-entropy ("val_loss":
    # every image's confidence counts, so it separates generations that validation accuracy,
    # +-0.4 points on 5,000 images, cannot; docs/distillation.md) or the highest accuracy
    final_by: str = "val_loss"
    # data-parallel device count (None: all visible). Not part of resume compatibility: the
    # numbers do not depend on it beyond floating-point reordering, so a run may resume on
    # another machine with another device count.
    devices: int | None = None

    def __post_init__(self) -> None:
        _check(self.gens >= 1, f"--gens must be >= 1, got {self.gens}")
        _check(self.devices is None or self.devices >= 1, f"--devices must be >= 1, got {self.devices}")
        _check(self.patience >= 0, f"--patience must be >= 0, got {self.patience}")
        _check(self.min_delta >= 0, f"--min-delta must be >= 0, got {self.min_delta}")
        _check(self.ensemble_from >= 0, f"--ensemble-from must be >= 0, got {self.ensemble_from}")
        _check(self.final_by in FINAL_BY, f"--final-by must be one of {FINAL_BY}, got {self.final_by!r}")
        _check(not self.distill.hint_weight or self.model.name in HINT_FAMILIES,
               f"--hint-weight needs a model with a hint layer ({', '.join(HINT_FAMILIES)}); "
               f"{self.model.name} has none")
        _check(not (self.distill.ps_kd and (self.train.mixup or self.train.cutmix)),
               "--ps-kd cannot be combined with --mixup/--cutmix: a mixed image's prediction belongs to no "
               "single example, so there is nothing to store for the next epoch's target")
        _check(not self.distill.teacher_views or self.train.augment != "none",
               "--teacher-views needs --augment basic or strong: with --augment none every view of an "
               "image would be the same image")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """Rebuild a stored config; a record from before a recipe default changed keeps the
        behaviour it was trained with (best-validation epochs, final student by accuracy)."""
        train = {"keep_epoch": "best", **d["train"]}
        top = {"final_by": "val_acc", **{k: v for k, v in d.items() if k not in ("model", "distill", "train")}}
        return cls(model=ModelSpec(**d["model"]), distill=DistillConfig(**d["distill"]),
                   train=TrainConfig(**train), **top)

    def compatible_with(self, other: RunConfig) -> list[str]:
        """Fields that must match for --resume (the epoch count may grow, the rest may not;
        ``devices``, ``eval_batch_size`` and the convolution backend may change freely)."""
        mine, theirs = self.to_dict(), other.to_dict()
        for d in (mine, theirs):  # which library runs the convolutions changes speed, not weights
            d["model"] = {k: v for k, v in d["model"].items() if k != "conv"}
        problems = []
        for key in ("model", "distill", "seed"):
            if mine[key] != theirs[key]:
                problems.append(f"{key}: run has {theirs[key]}, asked for {mine[key]}")
        t1, t2 = dict(mine["train"]), dict(theirs["train"])
        # "students twice as long" by default and the same number spelled out are one schedule
        t1["student_epochs"], t2["student_epochs"] = self.train.epochs_for(1), other.train.epochs_for(1)
        if {k: v for k, v in t1.items() if k != "eval_batch_size"} != {k: v for k, v in t2.items() if k != "eval_batch_size"}:
            problems.append(f"train: run has {t2}, asked for {t1}")
        return problems
