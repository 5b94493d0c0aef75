"""When to stop making new generations."""

from __future__ import annotations


def plateaued(scores: list[float], min_delta: float, patience: int) -> bool:
    """True once ``patience`` generations in a row failed to beat the best earlier score by more than ``min_delta``.

    ``patience <= 0`` disables early stopping.
    """
    if patience <= 0 or len(scores) <= patience:
        return False
    best_before = max(scores[: len(scores) - patience])
    return all(s - best_before <= min_delta for s in scores[len(scores) - patience :])
