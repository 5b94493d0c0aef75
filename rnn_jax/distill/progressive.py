"""Progressive self-knowledge distillation (PS-KD, Kim et al., ICCV 2021): host-side pieces.

Within one training run, example ``i``'s target at epoch ``e`` is
``(1 - a_e) * onehot(y_i) + a_e * p_{e-1}(x_i)``: the model's own softmax prediction for that
example from the previous epoch, softened more and more as training goes on. The predictions
come from the train step's own forward on the example (no extra forward pass) and live here,
on the host, one row per training example. The jitted step only ever sees the finished
``[B, C]`` target rows, exactly like mixup's soft labels, and hands back :func:`predictions`.

The whole variant is this module. The study screened it within noise (docs/distillation.md,
row P; it excludes mixing); it stays, whole in one module, so ``--ps-kd`` keeps working and
costs nothing at 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def self_target_weight(epoch: int, epochs: int, final_weight: float) -> float:
    """``a_e``: how much of epoch ``epoch``'s target is the model's previous prediction.

    As the authors' code: ``a_T * (e + 1) / E`` for the 0-based epoch ``e`` of ``E``, so the last
    epoch gets ``a_T``; epoch 0 has no earlier prediction and trains on the labels alone (0).
    """
    if epochs < 1 or not 0 <= epoch < epochs:
        raise ValueError(f"epoch {epoch} is outside a run of {epochs} epoch(s)")
    if epoch == 0:
        return 0.0
    return float(final_weight) * (epoch + 1) / epochs


def predictions(logits: jnp.ndarray) -> jnp.ndarray:
    """The step's extra output under PS-KD: the student's softmax [B, C] of its training forward."""
    return jax.nn.softmax(logits.astype(jnp.float32))


def one_hot_rows(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Float32 one-hot rows [N, C]: the store's start, so an example not yet predicted gets its label."""
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels)]


def progressive_targets(labels: np.ndarray, previous: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * onehot(labels) + weight * previous`` as float32 [B, C]; rows sum to 1
    when ``previous``'s rows do."""
    previous = np.asarray(previous, np.float32)
    return ((1.0 - weight) * one_hot_rows(labels, previous.shape[-1]) + weight * previous).astype(np.float32)


class PredictionStore:
    """The latest softmax prediction of every training example, updated in place by index.

    Mutable on purpose: copying an [N, C] array per batch to stay pure would cost more than the
    step. Rows start as the one-hot labels, so an example that missed an epoch (the last,
    partial batch is dropped) keeps its most recent prediction, or its label if it never had one.
    """

    def __init__(self, rows: np.ndarray):
        self.rows = np.array(rows, np.float32)  # a copy: the caller's array is never written

    @classmethod
    def from_labels(cls, labels: np.ndarray, num_classes: int) -> PredictionStore:
        return cls(one_hot_rows(labels, num_classes))

    def targets(self, index: np.ndarray, labels: np.ndarray, weight: float) -> np.ndarray:
        """This batch's PS-KD targets [B, C] from the stored rows of ``index``."""
        return progressive_targets(labels, self.rows[np.asarray(index)], weight)

    def record(self, index: np.ndarray, probabilities) -> None:
        """Keep a batch's predictions [B, C] (a device array is fetched) as rows ``index``."""
        self.rows[np.asarray(index)] = np.asarray(probabilities, np.float32)
