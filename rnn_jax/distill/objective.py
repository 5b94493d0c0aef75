"""A train step's objective: one forward that yields what its loss terms need, and the terms, summed.

:func:`rnn_jax.distill.step.make_train_step` picks the forward and the terms once, when it builds
the step (KD + CE, deep supervision, FitNets hint), so the jitted step never branches on a mode.
A term is a pure function ``(outputs, batch, extra) -> (loss, parts)``: ``parts`` are logged as
metrics, ``extra`` is the weights the term trains beside the model (the hint's regressor) or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax.numpy as jnp

PyTree = Any


class Batch(NamedTuple):
    """One step's traced inputs besides the weights."""

    images: jnp.ndarray
    labels: jnp.ndarray  # class indices [B], or target distributions [B, C] (mixup, CutMix, PS-KD)
    teacher_logits: jnp.ndarray  # [B, C] logits, or an ensemble's log-probabilities
    alpha: jnp.ndarray  # the teacher term's weight: 0 in generation 0
    temperature: jnp.ndarray
    teacher_features: jnp.ndarray | None = None  # FitNets: the teacher's hint on this batch


class Outputs(NamedTuple):
    """What the student's training forward produced."""

    logits: jnp.ndarray  # the head inference uses [B, C]: accuracy and PS-KD's predictions
    heads: jnp.ndarray | None = None  # deep supervision: every head [T, B, C], the last = ``logits``
    head_weights: jnp.ndarray | None = None  # deep supervision: each head's loss weight [T]
    features: jnp.ndarray | None = None  # FitNets: the guided layer's feature map


Parts = dict[str, jnp.ndarray]
Forward = Callable[[Any, jnp.ndarray], Outputs]
Term = Callable[[Outputs, Batch, PyTree], tuple[jnp.ndarray, Parts]]


@dataclass(frozen=True)
class Objective:
    """A forward and the loss terms on its outputs; the loss is their sum, in order."""

    forward: Forward
    terms: tuple[Term, ...]

    def __call__(self, model: Any, batch: Batch, extra: PyTree = None) -> tuple[jnp.ndarray, Outputs, Parts]:
        outputs = self.forward(model, batch.images)
        total, parts = None, {}
        for term in self.terms:
            loss, term_parts = term(outputs, batch, extra)
            total = loss if total is None else total + loss
            parts.update(term_parts)
        return total, outputs, parts
