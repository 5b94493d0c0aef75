"""BAN ensembles: average the generations' probabilities (Furlanello et al., 2018)."""

from __future__ import annotations

import numpy as np

from rnn_jax.softmax import softmax


def ensemble_probabilities(logits_per_generation: list[np.ndarray]) -> np.ndarray:
    """Mean of each member's softmax: members with sharper logits do not dominate."""
    if not logits_per_generation:
        raise ValueError("an ensemble needs at least one generation")
    return np.mean([softmax(np.asarray(x, np.float64)) for x in logits_per_generation], axis=0)


def accuracy(probs_or_logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs_or_logits, axis=-1) == labels))
