"""Stored teacher views (FKD, Shen & Xing 2021): K fixed augmented views of every training image.

A cached teacher normally scores the clean image while the student trains on an augmented one,
so the soft target describes a picture the student never saw. Here view ``k`` of training
example ``i`` is the run's own augmentation (:func:`rnn_jax.data.pipeline.augment_stored`: the
same level, flips and train view) driven by a generator seeded from (run seed, i, k). The
teacher scores every view once per student generation (an ``[N, K, C]`` array); each epoch
every example draws one of its K views, and the student trains on exactly those pixels with
exactly that row: consistent teaching at cached cost.

Pixels are never stored (N*K images can be large): they are rebuilt from the stored image
whenever a batch needs them, which the seeding makes exact. Everything here is a pure function
of its arguments, so a resumed run draws the same views and targets as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnn_jax.data.pipeline import augment_stored
from rnn_jax.data.types import TrainView

_VIEW_STREAM = 0x76696577  # "view": keeps these seeds apart from the run's other seed streams
_CHOICE_STREAM = 2  # epoch_seed's sub-stream for the view choice (1 is the mixing draws')

Logits = Callable[[np.ndarray, Callable[[np.ndarray], np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class ViewSpec:
    """What fixes view ``k`` of example ``i``: the view count, the run seed and the augmentation."""

    count: int
    seed: int
    augment: str
    flip: bool = True
    train_view: TrainView | None = None  # stored images larger than the input (e.g. hand crops)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a view spec needs at least one view, got {self.count}")
        if self.augment == "none":
            raise ValueError("stored views need an augmentation: with 'none' every view is the same image")


def view_rng(seed: int, example: int, view: int) -> np.random.Generator:
    """The generator that draws view ``view`` of example ``example``: the example's index, not
    its batch, decides it, so the teacher and any later batch rebuild the same pixels."""
    return np.random.default_rng(np.random.SeedSequence([_VIEW_STREAM, seed, int(example), int(view)]))


def view_pixels(stored: np.ndarray, index: np.ndarray, views: np.ndarray, spec: ViewSpec) -> np.ndarray:
    """Model inputs for view ``views[j]`` of example ``index[j]``; ``stored[j]`` is that example's
    stored image. One image at a time: each view has its own generator."""
    rows = [augment_stored(np.asarray(stored[j : j + 1]), view_rng(spec.seed, i, k), spec.augment, spec.flip,
                           spec.train_view)
            for j, (i, k) in enumerate(zip(np.asarray(index), np.asarray(views)))]
    return np.concatenate(rows)


def epoch_views(seed: int, n: int, count: int) -> np.ndarray:
    """Which of its ``count`` views each of ``n`` examples trains on this epoch (uniform, seeded
    by the epoch seed: a resumed epoch draws the same views)."""
    return np.random.default_rng(np.random.SeedSequence([seed, _CHOICE_STREAM])).integers(count, size=n)


def epoch_images(spec: ViewSpec, views: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``(stored images, their indices) -> inputs`` for :func:`train_batches`' ``view_images``:
    every example as the view ``views`` chose for it this epoch."""

    def images(stored: np.ndarray, index: np.ndarray) -> np.ndarray:
        return view_pixels(stored, index, views[index], spec)

    return images


def epoch_teacher_rows(view_logits: np.ndarray, views: np.ndarray) -> np.ndarray:
    """``[N, C]``: each example's teacher row for the view it trains on this epoch (cached-teacher
    rows indexed by example, as :func:`batch_teacher_logits` expects)."""
    return view_logits[np.arange(len(views)), views]


def teacher_view_logits(logits_of: Logits, stored: np.ndarray, spec: ViewSpec) -> np.ndarray:
    """``[N, K, C]``: a teacher's logits on every view of every stored training image.

    ``logits_of(inputs, transform)`` is the batched forward (the driver's ``predict_logits``
    with the teacher's weights bound); it is given the example indices as ``inputs`` and a
    ``transform`` that turns a batch of indices into that view's pixels, so no more than one
    batch of views ever exists at a time.
    """
    index = np.arange(len(stored))

    def view(k: int) -> Callable[[np.ndarray], np.ndarray]:
        return lambda rows: view_pixels(stored[rows], rows, np.full(len(rows), k), spec)

    return np.stack([np.asarray(logits_of(index, view(k)), np.float32) for k in range(spec.count)], axis=1)
