"""Temperature across generations, and the learning-rate schedule within one (optax)."""

from __future__ import annotations

import math

import optax

from rnn_jax.config import TEMPERATURE_SCHEDULES


def generation_temperature(gen: int, gens: int, start: float, end: float | None = None,
                           kind: str = "constant", step_every: int = 1, step_factor: float = 0.5) -> float:
    """Distillation temperature used to train generation ``gen`` (gen >= 1 has a teacher).

    ``linear``/``cosine`` move from ``start`` (first student, gen 1) to ``end`` (last, gen-1);
    ``step`` multiplies by ``step_factor`` every ``step_every`` generations.
    """
    if kind not in TEMPERATURE_SCHEDULES:
        raise ValueError(f"unknown temperature schedule {kind!r}; choose from {TEMPERATURE_SCHEDULES}")
    end = start if end is None else end
    if kind == "constant" or gens <= 2:
        return float(start) if kind != "step" else float(start)
    progress = min(max((gen - 1) / (gens - 2), 0.0), 1.0)
    if kind == "linear":
        return float(start + (end - start) * progress)
    if kind == "cosine":
        return float(end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress)))
    return float(start * step_factor ** ((gen - 1) // max(step_every, 1)))


def learning_rate_schedule(peak: float, total_steps: int, warmup_steps: int) -> optax.Schedule:
    """Linear warm-up then cosine decay to zero: the usual choice for short generations."""
    warmup_steps = min(warmup_steps, max(total_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup_steps, max(total_steps, warmup_steps + 1))
