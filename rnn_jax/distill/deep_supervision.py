"""The deep-supervision term: models with several heads (the TRM) train every one of them.

The model says so with a ``supervised_logits`` method (heads [T, B, C]) and a ``head_weights``
method; the last head is the one inference uses, so accuracy is counted on it.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from rnn_jax.distill.losses import deep_supervision_loss
from rnn_jax.distill.objective import Batch, Outputs, Parts, PyTree, Term


def has_deep_supervision(model: Any) -> bool:
    """Whether ``model`` trains on all its heads (it has ``supervised_logits``)."""
    return hasattr(model, "supervised_logits")


def heads_forward(model: Any, images: jnp.ndarray) -> Outputs:
    """Every head's logits and their loss weights; ``logits`` is the last head."""
    heads = model.supervised_logits(images)
    return Outputs(heads[-1], heads=heads, head_weights=model.head_weights())


def deep_supervision_term(label_smoothing: float = 0.0, teacher_heads: str = "all") -> Term:
    """KD + CE on every head (:func:`rnn_jax.distill.losses.deep_supervision_loss`); the teacher
    reaches ``"all"`` heads or the ``"final"`` one. Logs the weighted ``ce`` and ``kl``."""

    def term(outputs: Outputs, batch: Batch, extra: PyTree) -> tuple[jnp.ndarray, Parts]:
        return deep_supervision_loss(outputs.heads, outputs.head_weights, batch.labels, batch.teacher_logits,
                                     batch.alpha, batch.temperature, label_smoothing, teacher_heads)

    return term
