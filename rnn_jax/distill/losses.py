"""Born-again distillation loss: pure functions of logits, no models."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from rnn_jax.config import HEAD_TARGETS


def label_targets(labels: jnp.ndarray, num_classes: int) -> jnp.ndarray:
    """Class indices [B] become one-hot rows; target distributions [B, C] (mixup, cutmix) pass as they are."""
    if labels.ndim == 2:
        return labels.astype(jnp.float32)
    return jax.nn.one_hot(labels, num_classes)


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray, label_smoothing: float = 0.0) -> jnp.ndarray:
    """Mean cross-entropy with optional label smoothing, per example then averaged.

    ``labels``: class indices [B], or target distributions [B, C] from mixed batches.
    """
    targets = optax.smooth_labels(label_targets(labels, logits.shape[-1]), label_smoothing)
    return optax.softmax_cross_entropy(logits, targets).mean()


def distillation_kl(student_logits: jnp.ndarray, teacher_logits: jnp.ndarray,
                    temperature: jnp.ndarray | float) -> jnp.ndarray:
    """KL(teacher_T || student_T) * T^2 (Hinton et al.): T^2 keeps gradients comparable across T."""
    t = jnp.asarray(temperature, jnp.float32)
    student_log_probs = jax.nn.log_softmax(student_logits.astype(jnp.float32) / t)
    teacher_probs = jax.nn.softmax(teacher_logits.astype(jnp.float32) / t)
    return optax.losses.kl_divergence(student_log_probs, teacher_probs).mean() * t**2


def kd_loss(student_logits: jnp.ndarray, labels: jnp.ndarray, teacher_logits: jnp.ndarray,
            alpha: jnp.ndarray | float, temperature: jnp.ndarray | float,
            label_smoothing: float = 0.0) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """``alpha * KL * T^2 + (1 - alpha) * CE``; alpha = 0 is generation 0 (labels only).

    Returns the loss and its parts for logging.
    """
    ce = cross_entropy(student_logits, labels, label_smoothing)
    kl = distillation_kl(student_logits, teacher_logits, temperature)
    alpha = jnp.asarray(alpha, jnp.float32)
    return alpha * kl + (1.0 - alpha) * ce, {"ce": ce, "kl": kl}


def deep_supervision_loss(head_logits: jnp.ndarray, weights: jnp.ndarray, labels: jnp.ndarray,
                          teacher_logits: jnp.ndarray, alpha: jnp.ndarray | float,
                          temperature: jnp.ndarray | float, label_smoothing: float = 0.0,
                          teacher_heads: str = "all") -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """Deep supervision: ``sum_t w_t * CE(logits_t)`` (w_t = lambda^(T - t)) for the labels, and the
    KD term on every head weighted alike (``teacher_heads="all"``) or on the final head only
    (``"final"``: the intermediate heads then learn from the labels alone).

    ``head_logits`` [T, B, C], last = the head used at inference. Returns the loss and its parts
    (``ce``, ``kl``: the weighted sums) so the step logs them like :func:`kd_loss`'s.
    """
    if teacher_heads not in HEAD_TARGETS:
        raise ValueError(f"teacher_heads must be one of {HEAD_TARGETS}, got {teacher_heads!r}")
    ces = jnp.stack([cross_entropy(z, labels, label_smoothing) for z in head_logits])
    ce = jnp.sum(weights * ces)
    if teacher_heads == "all":
        kl = jnp.sum(weights * jnp.stack([distillation_kl(z, teacher_logits, temperature) for z in head_logits]))
    else:
        kl = weights[-1] * distillation_kl(head_logits[-1], teacher_logits, temperature)
    alpha = jnp.asarray(alpha, jnp.float32)
    return alpha * kl + (1.0 - alpha) * ce, {"ce": ce, "kl": kl}
