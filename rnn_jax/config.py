"""Run configuration: frozen, validated dataclasses; the one place defaults live.

Each field that has a command-line flag carries it as metadata: ``help`` (``{default}`` is filled
in with the experiment's default), ``choices``, ``metavar``, ``flag`` (default ``--the-name``),
``negate`` (a ``--no-x`` switch for a bool that is on). ``experiments/flags.py`` builds the
experiments' flags from them; a field without ``help`` is set with ``--set section.field=value``.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field

from rnn_jax.errors import ConfigError
from rnn_jax.models.registry import ModelSpec

# the names the config accepts; the modules that implement them (rnn_jax.distill, rnn_jax.data)
# import them from here, so the arrow points one way: distill -> config, never back
TEMPERATURE_SCHEDULES = ("constant", "linear", "cosine", "step")  # distill/schedules.py
HINT_FAMILIES = ("cnn",)  # model families with a hint layer (distill/hints.py)
HEAD_TARGETS = ("all", "final")  # which deep-supervision heads the teacher reaches (distill/losses.py)
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

    alpha: float = field(default=0.7, metadata={"help": "weight of the KD term, 0..1 (default {default})"})
    temperature: float = field(default=4.0, metadata={"help": "distillation temperature T > 0 (default {default})"})
    temperature_end: float | None = field(default=None, metadata={"help": "final T for linear/cosine schedules"})
    temperature_schedule: str = field(default="constant", metadata={
        "choices": TEMPERATURE_SCHEDULES, "help": "how T changes across generations (default {default})"})
    label_smoothing: float = field(default=0.0, metadata={"help": "label smoothing for the CE term"})
    teacher: str = field(default="cached", metadata={  # see README: why cached is the default
        "choices": TEACHER_MODES,
        "help": "cached: teacher logits on clean images once per generation (fast); "
                "consistent: teacher runs on each augmented, mixed batch (default {default})"})
    # "ensemble" won the study (docs/distillation.md); "parent" is born-again networks as published
    teacher_from: str = field(default="ensemble", metadata={
        "choices": TEACHER_FROM,
        "help": "who teaches generation k: ensemble = the averaged probabilities of generations "
                "0..k-1 (default); parent = generation k-1 only"})
    ema_decay: float = field(default=0.0, metadata={
        "help": "> 0 keeps an EMA (mean teacher) of the weights; it becomes the generation's model"})
    teacher_heads: str = field(default="all", metadata={
        "choices": HEAD_TARGETS,
        "help": "trm: which deep-supervision heads get the teacher's soft targets (default {default})"})
    # rnn_jax/distill/progressive.py
    ps_kd: float = field(default=0.0, metadata={
        "metavar": "A",
        "help": "progressive self-knowledge distillation (PS-KD, Kim et al. 2021), every generation: "
                "epoch e's label target is (1-a_e)*onehot + a_e*(the model's own prediction of that "
                "image in epoch e-1), a_e rising linearly to A in the last epoch (paper: 0.8; "
                "0 = off, default). Not with --mixup/--cutmix"})
    # rnn_jax/distill/hints.py
    hint_weight: float = field(default=0.0, metadata={
        "metavar": "B",
        "help": "FitNets feature hints (Romero et al. 2015) for every student: adds B * MSE between a "
                "learned 1x1 regressor of its last conv stage's features and the newest teacher's "
                "(0 = off, default). cnn models only; needs --teacher consistent"})
    # rnn_jax/distill/views.py
    teacher_views: int = field(default=0, metadata={
        "metavar": "K",
        "help": "stored views (FKD, Shen & Xing 2021): the cached teacher scores K fixed augmented "
                "views of every training image once per student; each epoch the student trains on "
                "one of them, with exactly the teacher's output on it (0 = off, default). Needs "
                "--teacher cached and --augment basic or strong; costs K teacher passes over the "
                "training set per student"})

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
        _check(self.teacher_heads in HEAD_TARGETS,
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

    epochs: int = field(default=5, metadata={"help": "epochs per generation (default {default})"})
    batch_size: int = field(default=128, metadata={"help": "training batch size (default {default})"})
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate (default {default})"})
    optimizer: str = field(default="adamw", metadata={"choices": OPTIMIZERS, "help": "optimizer (default {default})"})
    weight_decay: float = field(default=5e-4, metadata={"help": "weight decay (default {default})"})
    warmup_epochs: float = 0.5
    augment: str = field(default="basic", metadata={
        "choices": AUGMENTATIONS,
        "help": "augmentation: basic = shift+flip, strong = + colour + cutout (noisy student) (default {default})"})
    flip: bool = field(default=True, metadata={
        "flag": "--no-flip", "negate": True, "help": "no horizontal flips (when left/right changes the class)"})
    # None: 64 on CPU (XLA:CPU's images/s drops above ~64 images per call: 2,450 img/s at 64
    # vs ~1,300 at 512 for the cpu preset's forward), 512 on GPU/TPU
    eval_batch_size: int | None = None
    max_train: int | None = field(default=None, metadata={"help": "cap the training examples (quick runs)"})
    # None: STUDENT_EPOCH_FACTOR x epochs. Students trained as long as their teacher ended up
    # behind it; twice as long, ahead of it (docs/distillation.md)
    student_epochs: int | None = field(default=None, metadata={
        "help": "epochs of every generation after 0 (default: twice --epochs, the recipe of "
                "docs/distillation.md; pass --epochs' value for equal-length generations)"})
    mixup: float = field(default=0.0, metadata={
        "help": "mixup Beta(a, a) on every generation's batches, teacher included (0 = off; default {default})"})
    cutmix: float = field(default=0.0, metadata={
        "help": "CutMix Beta(a, a) likewise (0 = off, default; with --mixup, half the batches each)"})
    # "last": born-again networks distil from converged teachers; "best" is a best-of-N pick that
    # validation noise biases upwards, more so for longer generations
    keep_epoch: str = field(default="last", metadata={
        "choices": KEEP_EPOCHS,
        "help": "the weights each generation keeps: best = its epoch with the highest validation "
                "accuracy, last = the end of its schedule (default {default})"})

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
    gens: int = field(default=3, metadata={"help": "generations to train (default {default})"})
    seed: int = field(default=0, metadata={"help": "run seed; generation k uses seed*1000+k (default {default})"})
    patience: int = field(default=0, metadata={
        "help": "stop after this many generations without val gain (0 = never, default)"})
    min_delta: float = field(default=0.0, metadata={"help": "val-accuracy gain that counts as improvement"})
    ensemble_from: int = 1  # BAN ensemble averages generations >= this (gen 0 is often weakest)
    # "val_loss": every image's confidence counts, so it separates generations that validation
    # accuracy, +-0.4 points on 5,000 images, cannot (docs/distillation.md)
    final_by: str = field(default="val_loss", metadata={
        "choices": FINAL_BY,
        "help": "the final student: the generation with the lowest validation cross-entropy "
                "(default: less noisy than accuracy) or the highest validation accuracy"})
    # Not part of resume compatibility: the numbers do not depend on it beyond floating-point
    # reordering, so a run may resume on another machine with another device count.
    devices: int | None = field(default=None, metadata={
        "help": "data-parallel over this many devices (default: all visible, of every process in a "
                "multi-process run); --batch-size must divide by it. See docs/distributed.md"})

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


# ---------------------------------------------------------------- one field by its dotted name
SECTIONS: dict[str, type] = {"model": ModelSpec, "distill": DistillConfig, "train": TrainConfig, "": RunConfig}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def config_field(path: str) -> tuple[str, dataclasses.Field]:
    """``"train.lr"`` -> ("train", its Field); a RunConfig field of its own has no section (``"gens"``)."""
    section, _, name = path.rpartition(".")
    cls = SECTIONS.get(section)
    fields = {f.name: f for f in dataclasses.fields(cls)} if cls else {}
    if name not in fields or name in SECTIONS:
        known = ", ".join(f"{s}.*" if s else "gens, seed, ..." for s in SECTIONS)
        raise ConfigError(f"unknown config field {path!r} (fields: {known}; see rnn_jax/config.py)")
    return section, fields[name]


def parse_assignment(text: str) -> tuple[str, str, object]:
    """``"section.field=value"`` -> (section, field name, value typed as the field is)."""
    path, eq, raw = text.partition("=")
    if not eq:
        raise ConfigError(f"--set takes section.field=value, got {text!r}")
    section, f = config_field(path.strip())
    hint = typing.get_type_hints(SECTIONS[section])[f.name]
    try:
        return section, f.name, _typed(raw.strip(), hint)
    except ValueError:
        kind = hint.__name__ if isinstance(hint, type) else str(hint)
        raise ConfigError(f"--set {text}: not a value of type {kind}") from None


def _typed(raw: str, hint: object) -> object:
    options = typing.get_args(hint) if typing.get_origin(hint) is not tuple else ()
    if type(None) in options:
        if raw.lower() in ("none", "null"):
            return None
        hint = next(o for o in options if o is not type(None))
    if hint is bool:
        if raw.lower() not in _TRUE + _FALSE:
            raise ValueError(raw)
        return raw.lower() in _TRUE
    if typing.get_origin(hint) is tuple:  # tuple[int, ...]: a comma list
        return tuple(int(x) for x in raw.split(",") if x.strip())
    return hint(raw) if hint in (int, float) else raw
