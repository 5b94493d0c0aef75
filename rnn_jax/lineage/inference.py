"""Inference over whole splits and what is measured on it: logits, accuracy and loss, BAN
ensembles. The one place for these; training, evaluation and the reports all use it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from rnn_jax.data.pipeline import eval_batches
from rnn_jax.data.types import Dataset
from rnn_jax.distill.ensemble import ensemble_probabilities
from rnn_jax.distributed import Placement
from rnn_jax.lineage.record import finished_generations
from rnn_jax.lineage.run_folder import gen_dir


def predict_logits(forward: Callable, params, batch_stats, images: np.ndarray, batch_size: int,
                   transform: Callable | None = None, placement: Placement | None = None) -> np.ndarray:
    """Logits for a whole split in fixed-size batches (one compilation, padding dropped).

    With a data-parallel ``placement`` each batch is sharded like a training batch (each
    process reads only its rows; ``batch_size`` must divide by the device count) and the
    replicated logits come back whole on every process.
    """
    if placement is None or placement.mesh is None:
        batches = eval_batches(images, batch_size, transform)
        put = lambda batch: jnp.asarray(batch, jnp.float32)  # noqa: E731
    else:
        batches = eval_batches(images, batch_size, transform, placement.local_rows(batch_size))
        put = lambda batch: placement.batch(batch, jnp.float32)  # noqa: E731
    out = [np.asarray(forward(params, batch_stats, put(batch)))[:valid] for batch, valid in batches]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def logits_metrics(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) computed in float64 numpy."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(labels)), labels].mean())
    return float(np.mean(logits.argmax(axis=1) == labels)), loss


def ensemble_accuracy(member_logits: list[np.ndarray], labels: np.ndarray) -> float:
    """Accuracy of the BAN ensemble (mean of the members' probabilities)."""
    probs = ensemble_probabilities(member_logits)
    return float(np.mean(probs.argmax(1) == labels))


def ensemble_metrics(run_dir: Path, record: dict, dataset: Dataset) -> dict:
    """BAN ensembles from the stored logits: all finished generations, and those >= ensemble_from."""
    done = sorted(g["gen"] for g in finished_generations(record))
    start = record["config"].get("ensemble_from", 1)
    members = {"all": done, f"gen>={start}": [g for g in done if g >= start]}
    out = {}
    for label, gens in members.items():
        if len(gens) < 2 or (label != "all" and gens == done):
            continue
        result = {"members": gens}
        for split_name, split in dataset.splits().items():
            if split_name == "train":
                continue
            paths = [gen_dir(run_dir, g) / f"{split_name}_logits.npy" for g in gens]
            if not all(p.is_file() for p in paths):
                continue
            result[f"{split_name}_acc"] = ensemble_accuracy([np.load(p) for p in paths], split.labels)
        out[label] = result
    return out
