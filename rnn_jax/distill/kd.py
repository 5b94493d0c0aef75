"""The born-again term: ``alpha * KL * T^2 + (1 - alpha) * CE`` on the logits the model infers with.

Every model without deep supervision trains on it; generation 0 is the same term with alpha 0.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from rnn_jax.distill.losses import kd_loss
from rnn_jax.distill.objective import Batch, Outputs, Parts, PyTree, Term


def logits_forward(model: Any, images: jnp.ndarray) -> Outputs:
    """The plain forward: the model's logits."""
    return Outputs(model(images))


def kd_term(label_smoothing: float = 0.0) -> Term:
    """KD + CE (:func:`rnn_jax.distill.losses.kd_loss`); logs ``ce`` and ``kl``."""

    def term(outputs: Outputs, batch: Batch, extra: PyTree) -> tuple[jnp.ndarray, Parts]:
        return kd_loss(outputs.logits, batch.labels, batch.teacher_logits, batch.alpha, batch.temperature,
                       label_smoothing)

    return term
