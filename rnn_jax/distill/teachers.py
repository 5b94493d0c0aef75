"""Teacher signals: the arrays a generation's train step receives in place of a teacher.

The step never holds a teacher. This module turns "who teaches" (the parent generation, or
the ensemble of every earlier generation) and "on what" (``cached``: once per generation on
clean images; ``consistent``: on the very augmented, possibly mixed, batch the student sees)
into one ``[B, C]`` array per step. Ensembles are combined as the log of their mean
probability, so ``softmax(teacher / T)`` tempers the ensemble's own distribution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax.config import TEACHER_FROM
from rnn_jax.data.mixing import Mix, mix_probabilities
from rnn_jax.softmax import log_softmax, logsumexp


def teacher_generations(gen: int, teacher_from: str) -> list[int]:
    """Which finished generations teach generation ``gen`` (none for generation 0)."""
    if teacher_from not in TEACHER_FROM:
        raise ValueError(f"unknown teacher {teacher_from!r}; choose from {TEACHER_FROM}")
    if gen == 0:
        return []
    return [gen - 1] if teacher_from == "parent" else list(range(gen))


def ensemble_log_probs(logits: Sequence[np.ndarray]) -> np.ndarray:
    """log(mean_k softmax(logits_k)) in float64, returned as float32; one member passes through."""
    if len(logits) == 1:
        return np.asarray(logits[0], np.float32)
    log_probs = log_softmax(np.stack([np.asarray(x, np.float64) for x in logits]))
    return (logsumexp(log_probs, axis=0) - np.log(len(logits))).astype(np.float32)


def _ensemble_log_probs_jax(logits: Sequence[jnp.ndarray]) -> jnp.ndarray:
    if len(logits) == 1:
        return logits[0]
    log_probs = jnp.stack([jax.nn.log_softmax(x.astype(jnp.float32)) for x in logits])
    return jax.nn.logsumexp(log_probs, axis=0) - jnp.log(len(logits))


@dataclass(frozen=True)
class TeacherSource:
    """Where a generation's soft targets come from: cached rows, forward passes, or nowhere (gen 0).

    ``cached_logits``: one row per training example (already an ensemble's log-probabilities
    when several generations teach). ``forward`` + ``members``: the teachers' weights, each run
    on the batch; ``params``/``batch_stats`` is the one-member shorthand.
    """

    cached_logits: np.ndarray | None
    forward: Callable | None
    params: object = None
    batch_stats: object = None
    put: Callable = jnp.asarray  # host rows -> device (sharded along the batch when data-parallel)
    members: tuple = field(default=())
    # FitNets hints: the jitted ``hint_features`` forward (None: no hints)
    feature_forward: Callable | None = None

    def __post_init__(self) -> None:
        if not self.members and self.params is not None:
            object.__setattr__(self, "members", ((self.params, self.batch_stats),))


def batch_teacher_logits(source: TeacherSource, index: np.ndarray, images: jnp.ndarray,
                         no_teacher: jnp.ndarray, mix: Mix | None = None) -> jnp.ndarray:
    """The teacher input of one train step.

    ``cached``: rows of the logits computed once on the clean training images (``index`` says
    which), mixed like the batch when it was mixed. ``consistent``: every member's jitted
    forward on this very (augmented, mixed) batch, combined as an ensemble.
    """
    if source.cached_logits is not None:
        rows = source.cached_logits[index]
        if mix is not None:
            probs = np.exp(log_softmax(rows))  # float64
            rows = np.log(np.maximum(mix_probabilities(probs, mix), 1e-12)).astype(np.float32)
        return source.put(rows)
    if source.forward is not None and source.members:
        return _ensemble_log_probs_jax([source.forward(p, s, images) for p, s in source.members])
    return no_teacher


def batch_teacher_features(source: TeacherSource, images: jnp.ndarray) -> jnp.ndarray | None:
    """The FitNets hint for one train step: the newest teacher's ``hint_features`` on this very
    batch, or None (no hints, or no teacher).

    An ensemble's hint is its newest member's (the parent's), not the members' mean: networks
    trained from different seeds need not order their channels alike, so averaging their
    feature maps would blur unrelated features together.
    """
    if source.feature_forward is None or not source.members:
        return None
    params, batch_stats = source.members[-1]
    return source.feature_forward(params, batch_stats, images)
