"""Every experiment's training defaults, in one place (issue 36: one source for each default).

``PRESETS``: settings per device, chosen by measurement: what ``experiments.hagrid``, the
notebook and the benchmark all mean by "the cpu preset" (with the landmark family's
augmentation and no-flip rule). ``RECIPES``: the other experiments' own defaults, as flag
values; each experiment's parser takes them from here. A field neither names keeps its
``rnn_jax/config.py`` default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    model: str
    size: str
    image_size: int
    epochs: int
    batch_size: int
    lr: float
    # epochs of every generation after 0 (None: twice ``epochs``, the recipe of docs/distillation.md)
    student_epochs: int | None = None
    augment: str = "basic"  # images: shift + flip; landmarks: rotation, scale, jitter (rnn_jax.data.augment)
    flip: bool = True  # random horizontal flips (off where the features mirror left hands instead)


# cpu: chosen by accuracy per second of training on Sign Language Digits (python tools/bench.py
# --only presets; docs/performance.md): resnet-medium at 64 px reached 98.9% val in 28 s per
# generation, more than resnet-small given twice the epochs (98.2% in 33 s); it runs live in
# ~0.4 ms. Batch 8: small data sets need the optimizer steps, and on 2 cores XLA's images/s
# barely depends on the batch (resnet-medium, 3 seeds x 3 generations: 99.1 / 97.8 / 98.0% val
# at batch 8 vs 98.6 / 97.5 / 97.2% at batch 16 in the same time; resnet-small: 95.0% at batch 16
# vs 92.6% at batch 32, same time; batch 64 stalled on the demo data).
# gpu: ResNet-18 at 224 px fits an RTX 3060 (12 GB) at batch 128 (HaGRID's own baselines use 224 px).
# demo: the built-in drawn gestures: 5 generations in ~3 min on a CPU. Generation 0 trains as
# long as every student (16 epochs each), so the run's "vs gen 0" column is the gain over a
# label-only model trained as long as the student it is compared with (with 8 epochs it ended
# under-fit, at 84% train accuracy, and half the students' "gain" was their longer schedule).
PRESETS: dict[str, Preset] = {
    "cpu": Preset("resnet", "medium", 64, 10, 8, 2e-3),
    "gpu": Preset("resnet18", "default", 224, 15, 128, 2e-3),
    "demo": Preset("resnet", "small", 32, 16, 32, 2e-3, student_epochs=16),
    # landmarks: experiments.hagrid's default family on HaGRID (21 landmarks per hand, docs/hagrid.md):
    # the per-frame MLP (18,067 parameters with 19 classes, ~0.02 ms a hand on one thread); image_size is unused.
    # Augmentation strong (+ dropped points) won on HaGRID val (docs/hagrid.md); no flips: the feature
    # rule mirrors left hands to right ones (rnn_jax/hands/features.py).
    "landmarks": Preset("lmlp", "small", 0, 30, 64, 3e-3, augment="strong", flip=False),
    # landmarks-gpu: the same family for full HaGRID (~1M hands) on a GPU: at batch 64 an epoch of
    # 1M hands is 15.6k steps of an 18k-parameter MLP, which a GPU runs at its launch rate, not its
    # arithmetic; batch 1024 makes it ~1k steps, and the medium MLP (~50k parameters) has the data to
    # use its width. lr scaled with the batch's square root (x4). Not yet run on a GPU (docs/hagrid.md
    # has the CPU timing of an epoch of 1M simulated hands for both presets).
    "landmarks-gpu": Preset("lmlp", "medium", 0, 30, 1024, 1.2e-2, augment="strong", flip=False),
}

# Each experiment's own defaults, by flag name (experiments/flags.py add_common_flags: None = from
# the experiment's --preset). experiments/motion.py keeps its own (another module owns it).
RECIPES: dict[str, dict[str, object]] = {
    # the distillation study's winner (docs/distillation.md): a plain CNN that fits its training
    # set in 10 epochs, mixup 0.2 on every generation, students twice as long, taught by the
    # ensemble of earlier generations run on the very mixed batch (consistent), 4 generations
    "fashion_mnist": {"gens": 4, "epochs": 10, "model": "cnn", "batch_size": 64, "augment": "none",
                      "mixup": 0.2, "teacher": "consistent"},
    # landmark files: the stateful TRM (docs/landmarks.md), 40 epochs at batch 64; no flips (as the
    # landmark presets: left hands are mirrored by the feature rule; --flip turns them on)
    "landmarks": {"epochs": 40, "model": "trm", "batch_size": 64, "no_flip": True},
    # dynamic gestures: the window model (docs/motion.md), 20 epochs at batch 64; no flips (the
    # motion features keep the user's view: a swipe's direction and a circle's sense must survive)
    "motion": {"epochs": 20, "model": "motion", "batch_size": 64, "no_flip": True},
    # HaGRID and photo folders: model, size, epochs, batch, lr and augmentation from PRESETS
    "hagrid": {"gens": 5, "epochs": None, "model": None, "size": None, "batch_size": None, "lr": None,
               "augment": None},
}


def default_image_size(kind: str) -> int:
    """The input side of a data source whose spec names none: the demo preset's for the built-in
    drawn gestures, the cpu preset's for photos (class folders, HaGRID). Read from ``PRESETS`` so
    the registry never keeps a second copy of either size."""
    return PRESETS["demo" if kind == "builtin" else "cpu"].image_size


def preset_name(family: str, device: str) -> str:
    """The preset a family uses on a device ("cpu" or "gpu"): no silent swap between families."""
    if family == "landmarks":
        return "landmarks-gpu" if device == "gpu" else "landmarks"
    return device
