"""Who teaches a generation, and what its teacher hands each batch.

Cached mode reads each teacher's stored logits on the clean training images (recomputed when
missing or unreadable; with ``--teacher-views K`` one row per stored view, ``[N, K, C]``) and
combines several teachers into the ensemble's log-probabilities. Consistent mode runs the
teachers' forward on every augmented batch. :meth:`Teaching.batch_inputs` is the one call the
epoch loop makes per batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from rnn_jax.distill.teachers import (
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
from rnn_jax.lineage.context import RunContext
from rnn_jax.lineage.inference import predict_logits
from rnn_jax.lineage.run_folder import save_array
from rnn_jax.lineage.weights import restore_weights


@dataclasses.dataclass(frozen=True)
class Teaching:
    """A generation's teachers (generation 0: none) and how they reach each batch."""

    teachers: list[int]
    source: TeacherSource
    no_teacher: Any  # the zeros a step gets when nobody teaches (one compilation either way)
    view_spec: ViewSpec | None = None  # stored views: the student trains on the views its teacher scored

    def for_epoch(self, seed: int, rows: int) -> tuple[Teaching, np.ndarray | None]:
        """This epoch's teaching and, with stored views, the images the student trains on."""
        if self.view_spec is None:
            return self, None
        views = epoch_views(seed, rows, self.view_spec.count)
        source = dataclasses.replace(self.source, cached_logits=epoch_teacher_rows(self.source.cached_logits, views))
        return dataclasses.replace(self, source=source), epoch_images(self.view_spec, views)

    def batch_inputs(self, index: np.ndarray, images, mix=None) -> tuple[Any, Any]:
        """(teacher logits, teacher hint features or None) for one batch of (mixed) images."""
        teacher = batch_teacher_logits(self.source, index, images, self.no_teacher, mix)
        return teacher, batch_teacher_features(self.source, images)


def teaching_for(ctx: RunContext, gen: int) -> Teaching:
    """Restore generation ``gen``'s teachers and, in cached mode, their logits on the training images."""
    config, placement = ctx.config, ctx.placement
    teachers = teacher_generations(gen, config.distill.teacher_from)
    weights = [restore_weights(ctx, g) for g in teachers]
    cached = None
    if teachers and config.distill.teacher == "cached":
        logits = train_view_logits if config.distill.teacher_views else train_logits
        cached = ensemble_log_probs([logits(ctx, g, w) for g, w in zip(teachers, weights)])
    local_batch = config.train.batch_size // placement.process_count
    source = TeacherSource(cached, (ctx.teacher_forward or ctx.forward) if gen > 0 else None, put=placement.batch,
                           members=tuple(placement.replicate((w["params"], w["batch_stats"])) for w in weights),
                           feature_forward=ctx.feature_forward if gen > 0 else None)
    views = view_spec(ctx) if gen > 0 and cached is not None and config.distill.teacher_views else None
    return Teaching(teachers, source, placement.batch(np.zeros((local_batch, ctx.dataset.num_classes), np.float32)),
                    views)


def view_spec(ctx: RunContext) -> ViewSpec:
    train = ctx.config.train
    return ViewSpec(ctx.config.distill.teacher_views, ctx.config.seed, train.augment, train.flip,
                    ctx.dataset.train_view)


def train_view_logits(ctx: RunContext, gen: int, weights: dict) -> np.ndarray:
    """Generation ``gen``'s logits on every stored view, ``[N, K, C]``: computed once and kept in
    its folder beside train_logits.npy (named by K and seed; the augmentation and training
    subset cannot change within a run, --resume refuses that)."""
    spec = view_spec(ctx)
    path = ctx.folder.gen_dir(gen) / f"train_view_logits_k{spec.count}_seed{spec.seed}.npy"
    stored = stored_array(path, (len(ctx.train), spec.count, ctx.dataset.num_classes))
    if stored is not None:
        return stored

    def logits_of(inputs: np.ndarray, transform: Callable) -> np.ndarray:
        return predict_logits(ctx.forward, weights["params"], weights["batch_stats"], inputs,
                              ctx.eval_batch_size, transform, ctx.placement)

    logits = teacher_view_logits(logits_of, ctx.train.images, spec)
    if ctx.main:
        save_array(path, logits)
    return logits


def train_logits(ctx: RunContext, gen: int, weights: dict) -> np.ndarray:
    """Generation ``gen``'s logits on the clean training images (stored when it finished)."""
    stored = stored_array(ctx.folder.logits_path(gen, "train"), (len(ctx.train), ctx.dataset.num_classes))
    if stored is not None:
        return stored
    return predict_logits(ctx.forward, weights["params"], weights["batch_stats"], ctx.train.images,
                          ctx.eval_batch_size, ctx.dataset.clean_train_images, ctx.placement)


def stored_array(path, shape: tuple[int, ...]) -> np.ndarray | None:
    """A stored logits file when it is readable and of the expected shape, else None (recompute)."""
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)  # never unpickle: an unreadable file is recomputed
    except (OSError, ValueError):
        return None
    return array if array.shape == shape else None
